import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { lfwImagePath, PairsFormatError, parsePairs, readPairsFile } from '@facenet/core';
import { LFW } from '../helpers';
import { needLfw } from '../requirements';

const GOOD = ['2\t1', 'Ann\t1\t2', 'Bob\t1\tCid\t3', 'Dee\t2\t4', 'Eve\t1\tFay\t1', ''].join('\n');

describe('pairs.txt', () => {
  it('parses matched and mismatched lines into folds', () => {
    const p = parsePairs(GOOD);
    assert.equal(p.folds, 2);
    assert.equal(p.pairsPerFold, 1);
    assert.deepEqual(
      p.pairs.map((x) => [x.a.name, x.a.index, x.b.name, x.b.index, x.same, x.fold]),
      [
        ['Ann', 1, 'Ann', 2, true, 0],
        ['Bob', 1, 'Cid', 3, false, 0],
        ['Dee', 2, 'Dee', 4, true, 1],
        ['Eve', 1, 'Fay', 1, false, 1],
      ],
    );
  });

  it('names the line of each error', () => {
    const cases: [string, number, RegExp][] = [
      ['x\ty\n', 1, /header/],
      [GOOD.replace('Ann\t1\t2', 'Ann\t1'), 2, /matched pair/],
      [GOOD.replace('Bob\t1\tCid\t3', 'Bob\t1\tCid'), 3, /mismatched pair/],
      [GOOD.replace('Dee\t2\t4', 'Dee\tzero\t4'), 4, /bad image number 'zero'/],
      ['2\t1\nAnn\t1\t2\n', 2, /expected 4 pair lines/],
    ];
    for (const [text, line, msg] of cases) {
      assert.throws(
        () => parsePairs(text, 'p.txt'),
        (e: unknown) => e instanceof PairsFormatError && e.line === line && msg.test(e.message) && e.message.startsWith(`p.txt:${line}:`),
      );
    }
  });

  it('reads the real LFW View 2 file (nine folds of 300 + 300)', function () {
    needLfw(this);
    const p = readPairsFile(join(LFW, 'pairs.txt'));
    assert.equal(p.folds, 9);
    assert.equal(p.pairs.length, 9 * 600);
    assert.equal(p.pairs.filter((x) => x.same).length, 9 * 300);
    const first = p.pairs[0]!;
    assert.ok(existsSync(lfwImagePath(join(LFW, 'images'), first.a)), 'first pair image exists');
  });
});
