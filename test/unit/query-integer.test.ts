import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { queryInteger } from '@facenet/coordinator';

describe('integers in query strings', () => {
  it('reads decimal digits only: 1e2, 0x32, " 50", "", "-1", "05" and 2^53 are refused', () => {
    assert.equal(queryInteger.parse('0'), 0);
    assert.equal(queryInteger.parse('50'), 50);
    for (const bad of ['1e2', '0x32', ' 50', '50 ', '', '-1', '05', '1.0', '+5', '9007199254740993', 'Infinity'])
      assert.equal(queryInteger.safeParse(bad).success, false, `'${bad}' was accepted`);
  });

  it('any string is either refused or read back as the number it spells (fuzzed, seeded)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.nat().map(String)), (s) => {
        const r = queryInteger.safeParse(s);
        if (r.success) assert.equal(String(r.data), s);
      }),
      { seed: 20261207, numRuns: 500 },
    );
  });
});
