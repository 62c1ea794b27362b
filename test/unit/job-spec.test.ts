import { strict as assert } from 'node:assert';
import { compileTrainOptions, SpecError, TrainOptions } from '@facenet/core';
import { readdirSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { join } from 'node:path';
import { parseJobSpec, peopleOfPairsFolds, sourceFromSpec, sweepSpecSchema } from '@facenet/protocol';
import { searchSize, trialParameters, trialSpec } from '@facenet/coordinator';
import { LFW } from '../helpers';
import { needLfw } from '../requirements';

const base = { dataset: { kind: 'synthetic', identities: 20 } };
const issues = (spec: object) => {
  try {
    parseJobSpec(spec);
  } catch (err) {
    assert.ok(err instanceof SpecError);
    return err.issues;
  }
  return [];
};

describe('job spec', () => {
  it('refuses training fields the distributed path would drop (checkpoint folder, in-process evaluation)', () => {
    for (const field of ['checkpointDir', 'evaluateEvery']) {
      const found = issues({ ...base, train: { [field]: field === 'checkpointDir' ? '/tmp/x' : 5 } });
      assert.equal(found.length, 1);
      assert.equal(found[0]!.path, 'train');
      assert.match(found[0]!.message, new RegExp(field));
    }
  });

  it('elastic and non-finite settings: defaults, and each bad value named by its path', () => {
    const spec = parseJobSpec({ ...base, worldSize: 3 });
    assert.equal(spec.minWorldSize, undefined);
    assert.deepEqual(spec.nonFinite, { learningRateFactor: 0.1, maxRollbacks: 3 });
    assert.deepEqual(
      issues({ ...base, worldSize: 2, minWorldSize: 3 }).map((i) => i.path),
      ['minWorldSize'],
    );
    assert.deepEqual(
      issues({ ...base, nonFinite: { learningRateFactor: 1.5, maxRollbacks: -1 } })
        .map((i) => i.path)
        .sort(),
      ['nonFinite.learningRateFactor', 'nonFinite.maxRollbacks'],
    );
  });
});

describe('dataset.excludePairsFolds', () => {
  it('leaves out every person of the named folds of a pairs file, and only them', function () {
    needLfw(this);
    const pairs = join(LFW, 'pairs.txt');
    const spec = parseJobSpec({ dataset: { kind: 'folder', path: join(LFW, 'images'), excludePairsFolds: { pairs, folds: [8, 9] } } });
    const evalPeople = new Set(peopleOfPairsFolds(pairs, [8, 9]));
    const all = sourceFromSpec({ ...spec.dataset, excludePairsFolds: undefined } as typeof spec.dataset).index.names;
    const kept = sourceFromSpec(spec.dataset).index.names;
    assert.ok(evalPeople.size > 500, `${evalPeople.size} people in folds 8-9`);
    assert.ok(
      kept.every((n) => !evalPeople.has(n)),
      'no person of folds 8-9 trains',
    );
    assert.equal(kept.length, all.length - evalPeople.size);
    assert.throws(
      () => parseJobSpec({ dataset: { kind: 'folder', path: 'x', excludePairsFolds: { pairs, folds: [] } } }),
      (e: SpecError) => e.issues.some((i) => i.path === 'dataset.excludePairsFolds.folds'),
    );
  });

  it('every example job in examples/ is a valid spec whose training options compile; every example sweep is a valid sweep whose trials are', () => {
    const dir = join(__dirname, '..', '..', 'examples');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 4, files.join(', '));
    const jobs: [string, unknown][] = [];
    for (const f of files) {
      const doc = parseYaml(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>;
      if (!('parameters' in doc)) {
        jobs.push([f, doc]);
        continue;
      }
      const sweep = sweepSpecSchema.parse(doc);
      for (let i = 0; i < Math.min(searchSize(sweep), 8); i++) jobs.push([`${f} trial ${i}`, trialSpec(sweep, trialParameters(sweep, i))]);
    }
    assert.ok(
      jobs.some(([f]) => f.includes('trial')),
      'an example sweep',
    );
    for (const [f, doc] of jobs) {
      const spec = parseJobSpec(doc);
      assert.doesNotThrow(() => compileTrainOptions(spec.train as TrainOptions), f);
      if (spec.train.virtualShards !== undefined)
        assert.ok(spec.worldSize <= spec.train.virtualShards, `${f}: every rank needs a virtual shard`);
    }
  });
});
