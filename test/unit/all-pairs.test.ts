import { strict as assert } from 'node:assert';
import { allPairsValFar } from '@facenet/core';

/** Points on a line (dim 1): distances are squared differences, easy to count by hand. */
function line(values: number[]): Float32Array {
  return Float32Array.from(values);
}

describe('VAL at FAR over all pairs', () => {
  it('counts every genuine and impostor pair and reads VAL at the FAR threshold', () => {
    // Identity 0 at 0, 0.1, 0.2; identity 1 at 10, 10.1; identity 2 at 20.
    const emb = line([0, 0.1, 0.2, 10, 10.1, 20]);
    const labels = [0, 0, 0, 1, 1, 2];
    const r = allPairsValFar(
      emb,
      1,
      labels,
      labels.map(() => true),
      { farTargets: [0.1, 0.01] },
    );
    assert.equal(r.genuinePairs, 3 + 1);
    assert.equal(r.impostorPairs, 15 - 4);
    assert.equal(r.impostorPairsScored, 11);
    assert.equal(r.identities, 3);
    // FAR 0.1 of 11 impostors: 1 accepted, the closest impostor pair (0.2 vs 10: 9.8^2); every genuine pair is closer.
    assert.equal(r.points[0]!.acceptedImpostors, 1);
    assert.ok(Math.abs(r.points[0]!.threshold! - 9.8 ** 2) < 1e-3);
    assert.equal(r.points[0]!.val, 1);
    // FAR 0.01 of 11 impostors accepts none: not resolvable, said so rather than a 0.
    assert.equal(r.points[1]!.val, null);
  });

  it('leaves out images that failed to decode, and samples impostors beyond the cap', () => {
    const n = 400;
    const emb = new Float32Array(n * 2);
    const labels: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = i % 40;
      labels.push(id);
      emb[2 * i] = Math.cos(id) + 0.01 * (i % 7);
      emb[2 * i + 1] = Math.sin(id);
    }
    const ok = labels.map((_, i) => i !== 5);
    const all = allPairsValFar(emb, 2, labels, ok, { farTargets: [1e-3] });
    assert.equal(all.images, 399);
    assert.equal(all.genuinePairs, 39 * 45 + 36);
    assert.equal(all.impostorPairs, (399 * 398) / 2 - all.genuinePairs);
    const sampled = allPairsValFar(emb, 2, labels, ok, { farTargets: [1e-3], maxImpostorPairs: 20_000 });
    assert.equal(sampled.impostorPairsScored, 20_000);
    assert.equal(sampled.impostorPairs, all.impostorPairs);
    assert.ok(Math.abs((sampled.points[0]!.val as number) - (all.points[0]!.val as number)) < 0.1);
  });
});
