import { rngFor, shuffled } from '../util/random';
import { BoundedHeap } from './bounded-heap';
import { confusableIdentities } from './confusable';
import { AnchorPlan, compile, MinedTriplet, MiningOptions, MiningStats, miningStats, PairHistogram, pick } from './mine-triplets';

export interface RestrictedMiningOptions extends MiningOptions {
  /** Identities whose samples every anchor's negatives are drawn from: its nearest by centroid. @default 24 */
  neighbourIdentities?: number;
  /** Extra candidates per identity drawn at random from all other identities. @default 32 */
  randomCandidates?: number;
}

/**
 * Squared distance from |a|^2 + |b|^2 - 2 a.b: one multiply-add per dimension, four independent
 * sums so the CPU overlaps them (this loop is the miner's hot path).
 */
function distance(emb: Float32Array, norms: Float32Array, a: number, b: number, dim: number): number {
  const oa = a * dim, ob = b * dim;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let k = 0;
  for (; k + 3 < dim; k += 4) {
    s0 += emb[oa + k]! * emb[ob + k]!;
    s1 += emb[oa + k + 1]! * emb[ob + k + 1]!;
    s2 += emb[oa + k + 2]! * emb[ob + k + 2]!;
    s3 += emb[oa + k + 3]! * emb[ob + k + 3]!;
  }
  for (; k < dim; k++) s0 += emb[oa + k]! * emb[ob + k]!;
  const d = norms[a]! + norms[b]! - 2 * (s0 + s1 + s2 + s3);
  return d > 0 ? d : 0;
}

/**
 * Mines like `mineTriplets`, but searches each anchor's negatives only among the samples of the
 * identities nearest to its own (centroid k-NN) plus a random share of the rest, instead of all
 * n samples: a negative close enough to be worth mining almost always belongs to a confusable
 * identity. It streams identity by identity, so memory is O(n) numbers plus one identity's work
 * (no per-anchor objects for all n), and time O(n x (k x perIdentity + random) x dim) plus the
 * centroid k-NN instead of O(n^2 x dim). The statistics still come from full rows of sampled anchors.
 */
export function mineTripletsRestricted(emb: Float32Array, dim: number, labels: ArrayLike<number>, options: RestrictedMiningOptions = {}): { triplets: MinedTriplet[]; stats: MiningStats } {
  const c = compile(options);
  const k = options.neighbourIdentities ?? 24;
  const randomCount = options.randomCandidates ?? 32;
  const n = labels.length;
  const norms = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let q = 0; q < dim; q++) s += (emb[i * dim + q] as number) ** 2;
    norms[i] = s;
  }
  const byLabel = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const l = labels[i] as number;
    let list = byLabel.get(l);
    if (!list) byLabel.set(l, (list = []));
    list.push(i);
  }
  const neighbours = confusableIdentities(emb, dim, labels, k);
  const rng = rngFor(c.seed, 'restricted-mining');
  const largest = Math.max(1, ...[...byLabel.values()].map((m) => m.length));
  const candidates = new Int32Array(k * largest + randomCount);
  const heap = new BoundedHeap(c.cap);
  const triplets: MinedTriplet[] = [];
  const dap = new PairHistogram();
  // Anchors whose full rows make the statistics: the same seeded choice as the exact scan.
  const eligible: number[] = [];
  for (const members of byLabel.values()) if (members.length > 1) eligible.push(...members);
  eligible.sort((x, y) => x - y);
  const sampledSet = new Set(shuffled(eligible, rngFor(c.seed, 'mining-stats')).slice(0, c.statsAnchors));
  const sampled: { anchor: number; plan: AnchorPlan }[] = [];
  for (const [label, members] of byLabel) {
    if (members.length < 2) continue;
    let m = 0;
    for (const nb of neighbours.get(label) ?? []) for (const j of byLabel.get(nb.identity) ?? []) candidates[m++] = j;
    for (let tries = 0, added = 0; added < randomCount && tries < randomCount * 4 && n > members.length; tries++) {
      const j = Math.floor(rng() * n);
      if (labels[j] === label) continue;
      candidates[m++] = j;
      added++;
    }
    for (const a of members) {
      const positives = members.filter((p) => p !== a).map((id) => {
        const d = distance(emb, norms, a, id, dim);
        dap.add(d);
        return { id, d, low: c.floor ? d : d - c.margin, high: d + c.margin, target: d + c.margin * (1 - c.hardness) };
      });
      const plan: AnchorPlan = {
        positives,
        low: Math.min(...positives.map((p) => p.low)),
        high: Math.max(...positives.map((p) => p.high)),
        target: positives.reduce((s, p) => s + p.target, 0) / positives.length,
      };
      if (sampledSet.has(a)) sampled.push({ anchor: a, plan });
      heap.clear();
      for (let q = 0; q < m; q++) {
        const j = candidates[q] as number;
        const d = distance(emb, norms, a, j, dim);
        if (d <= plan.low || d >= plan.high) continue;
        const score = Math.abs(d - plan.target);
        if (score < heap.bound) heap.offer(score, j, d);
      }
      const kept = heap.sorted();
      for (const t of pick([plan], () => kept)) triplets.push({ ...t, anchor: a });
    }
  }
  triplets.sort((x, y) => x.anchor - y.anchor || x.positive - y.positive);
  const stats = miningStats(emb, dim, labels, sampled, dap, eligible.length, triplets.length, c);
  stats.memoryBoundBytes = n * 4 + candidates.byteLength + byLabel.size * k * 16 + 3 * sampled.length * Math.min(c.colBlock, n) * 4 + triplets.length * 64;
  return { triplets, stats };
}

/**
 * Recall of a restricted mining against the exact one on the same data: the fraction of the
 * anchor-positive pairs the exact scan mined for which the restricted one mined a negative at
 * least as close to the pair's target distance, within `tolerance` (distances of the same pair
 * differ by float rounding between the two computations, ~1e-6).
 */
export function miningRecall(exact: MinedTriplet[], restricted: MinedTriplet[], targetOf: (t: MinedTriplet) => number, tolerance = 1e-5): number {
  if (exact.length === 0) return 1;
  const found = new Map(restricted.map((t) => [`${t.anchor},${t.positive}`, t]));
  let good = 0;
  for (const e of exact) {
    const r = found.get(`${e.anchor},${e.positive}`);
    if (r && Math.abs(r.dan - targetOf(r)) <= Math.abs(e.dan - targetOf(e)) + tolerance) good++;
  }
  return good / exact.length;
}
