import { strict as assert } from 'node:assert';
import {
  confusableIdentities,
  mineTriplets,
  mineTripletsBruteForce,
  mineTripletsRestricted,
  mineTripletsRestrictedParallel,
  miningRecall,
  rngFor,
} from '@facenet/core';
import { useBackend } from '../helpers';

/** Points on a line in 2-D (second coordinate 0): squared distance = (x_i - x_j)^2. */
function line(xs: number[]): Float32Array {
  return Float32Array.from(xs.flatMap((x) => [x, 0]));
}

describe('miner: blocked semi-hard mining', function () {
  this.timeout(60000);
  before(useBackend);

  it("picks the expected negative in each pair's window, by hardness", async () => {
    // Identity 0 at x=0 and x=0.5 (d(a,p) = 0.25). Negatives of identity 1 at distances
    // (from x=0) 0.09 (hard), 0.2704 and 0.3249 (inside 0.25..0.45, semi-hard), 0.64 (easy).
    const emb = line([0, 0.5, 0.3, 0.52, 0.57, 0.8]);
    const labels = [0, 0, 1, 1, 1, 1];
    const mined = async (hardness: number) =>
      (await mineTriplets(emb, 2, labels, { hardness, margin: 0.2, rowBlock: 2, colBlock: 3 })).triplets.find((t) => t.anchor === 0);
    // hardness 0: target d(a,p)+alpha = 0.45 -> the semi-hard negative closest to it, x=0.57 (0.3249).
    assert.equal((await mined(0))?.negative, 4);
    // hardness 1: target d(a,p) = 0.25 -> the closest one above it, x=0.52 (0.2704).
    assert.equal((await mined(1))?.negative, 3);
    // The hard negative (x=0.3, 0.09 < 0.25) is never taken while the floor is on...
    const all = (await mineTriplets(emb, 2, labels, { hardness: 1, margin: 0.2 })).triplets;
    assert.ok(all.every((t) => t.dan > t.dap));
    // ...and can be once it is off (window from d(a,p) - alpha = 0.05).
    const noFloor = (await mineTriplets(emb, 2, labels, { hardness: 1, floor: false, margin: 0.2 })).triplets.find(
      (t) => t.anchor === 0 && t.positive === 1,
    );
    assert.equal(noFloor?.negative, 3, 'closest to d(a,p) either side: 0.2704 (|0.02|) beats 0.09 (|0.16|)');
  });

  it('reports easy, semi-hard and hard fractions', async () => {
    const emb = line([0, 0.5, 0.3, 0.52, 0.57, 0.8]);
    const s = (await mineTriplets(emb, 2, [0, 0, 1, 1, 1, 1], { margin: 0.2, statsAnchors: 1000 })).stats;
    assert.equal(s.pairs, 2 + 12);
    assert.ok(Math.abs(s.easy + s.semiHard + s.hard - 1) < 1e-9);
    assert.ok(s.memoryBoundBytes > 0);
  });

  it('blocked tiles give exactly the brute-force result', async () => {
    const rng = rngFor('mining-test');
    const n = 97,
      dim = 16;
    const emb = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      let norm = 0;
      for (let d = 0; d < dim; d++) {
        const v = rng() - 0.5;
        emb[i * dim + d] = v;
        norm += v * v;
      }
      for (let d = 0; d < dim; d++) emb[i * dim + d] = emb[i * dim + d]! / Math.sqrt(norm);
    }
    const labels = Array.from({ length: n }, (_, i) => i % 13);
    for (const hardness of [0, 0.5, 1]) {
      const opts = { hardness, margin: 0.4, candidatesPerAnchor: 4 };
      const blocked = (await mineTriplets(emb, dim, labels, { ...opts, rowBlock: 10, colBlock: 7 })).triplets;
      const brute = await mineTripletsBruteForce(emb, dim, labels, opts);
      assert.ok(brute.length > n, `enough triplets to mean something (${brute.length})`);
      assert.deepEqual(
        blocked.map((t) => [t.anchor, t.positive, t.negative]),
        brute.map((t) => [t.anchor, t.positive, t.negative]),
      );
    }
  });

  it('finds the confusable identities (nearest centroids)', async () => {
    // Identities 0 and 1 sit close together, 2 far away.
    const emb = Float32Array.from([1, 0, 0.99, 0.14, 0.98, 0.2, 0.97, 0.24, 0, 1, 0.1, 0.99]);
    const conf = await confusableIdentities(emb, 2, [0, 0, 1, 1, 2, 2], 1);
    assert.equal(conf.get(0)?.[0]?.identity, 1);
    assert.equal(conf.get(1)?.[0]?.identity, 0);
    assert.equal(conf.get(2)?.[0]?.identity, 1);
  });

  /** Unit embeddings: identities in groups of 10 similar ones, `per` samples each, as a trained model's. */
  function clustered(identities: number, per: number, dim: number, spread: number): { emb: Float32Array; labels: number[] } {
    const rng = rngFor('restricted-test', identities);
    const emb = new Float32Array(identities * per * dim);
    const group = new Float32Array(dim);
    const centre = new Float32Array(dim);
    for (let i = 0; i < identities * per; i++) {
      if (i % (per * 10) === 0) for (let d = 0; d < dim; d++) group[d] = rng() - 0.5;
      if (i % per === 0) for (let d = 0; d < dim; d++) centre[d] = group[d]! + 0.5 * (rng() - 0.5);
      let norm = 0;
      for (let d = 0; d < dim; d++) {
        const v = centre[d]! + spread * (rng() - 0.5);
        emb[i * dim + d] = v;
        norm += v * v;
      }
      for (let d = 0; d < dim; d++) emb[i * dim + d] = emb[i * dim + d]! / Math.sqrt(norm);
    }
    return { emb, labels: Array.from({ length: identities * per }, (_, i) => Math.floor(i / per)) };
  }

  it('restricted to every other identity, the centroid-neighbour search equals the exact scan', async () => {
    const { emb, labels } = clustered(12, 6, 16, 0.6);
    const opts = { hardness: 0.5, margin: 0.4, candidatesPerAnchor: 4 };
    const exact = (await mineTriplets(emb, 16, labels, opts)).triplets;
    const restricted = (await mineTripletsRestricted(emb, 16, labels, { ...opts, neighbourIdentities: 11, randomCandidates: 0 })).triplets;
    assert.ok(exact.length > 100);
    assert.deepEqual(
      restricted.map((t) => [t.anchor, t.positive, t.negative]),
      exact.map((t) => [t.anchor, t.positive, t.negative]),
    );
  });

  it('restricted to a few neighbour identities, it keeps >= 95% of the exact negatives (recall)', async () => {
    const { emb, labels } = clustered(300, 8, 32, 0.7);
    const opts = { hardness: 0.5, margin: 0.2 };
    const exact = (await mineTriplets(emb, 32, labels, opts)).triplets;
    const restricted = (await mineTripletsRestricted(emb, 32, labels, { ...opts, neighbourIdentities: 24 })).triplets;
    const recall = miningRecall(exact, restricted, (t) => t.dap + 0.2 * 0.5);
    assert.ok(exact.length > 1000, `${exact.length} exact triplets`);
    assert.ok(recall >= 0.95, `recall ${recall.toFixed(3)}`);
    assert.ok(miningRecall(exact, [], () => 0) === 0 && miningRecall([], restricted, () => 0) === 1, 'recall is measured, not assumed');
  });

  it('the two-thread search returns exactly the one-thread result', async () => {
    const { emb, labels } = clustered(120, 6, 32, 0.7);
    const opts = { hardness: 0.3, margin: 0.2, neighbourIdentities: 8 };
    const one = await mineTripletsRestricted(emb, 32, labels, opts);
    const two = await mineTripletsRestrictedParallel(emb, 32, labels, opts);
    assert.ok(one.triplets.length > 100);
    assert.deepEqual(two.triplets, one.triplets);
    assert.deepEqual(two.stats, one.stats);
  });
});
