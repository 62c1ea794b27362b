import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
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
/** The identities to scan: their members and candidate negatives, flattened (shareable with a worker thread). */
export interface ScanWork {
  members: Int32Array;
  memberOffsets: Int32Array;
  candidates: Int32Array;
  candidateOffsets: Int32Array;
}

/** What scanning some identities yields, merged across threads. */
export interface ScanResult {
  triplets: MinedTriplet[];
  dapBins: number[];
  pairs: number;
  sampled: { anchor: number; plan: AnchorPlan }[];
}

/** Scans identities [from, to) of `work`: each anchor against its identity's candidates. */
export function scanIdentities(emb: Float32Array, norms: Float32Array, dim: number, c: ReturnType<typeof compile>, sampledSet: ReadonlySet<number>, work: ScanWork, from: number, to: number): ScanResult {
  const heap = new BoundedHeap(c.cap);
  const triplets: MinedTriplet[] = [];
  const dap = new PairHistogram();
  const sampled: { anchor: number; plan: AnchorPlan }[] = [];
  for (let g = from; g < to; g++) {
    const members = work.members.subarray(work.memberOffsets[g], work.memberOffsets[g + 1]);
    const cands = work.candidates.subarray(work.candidateOffsets[g], work.candidateOffsets[g + 1]);
    for (const a of members) {
      const positives: AnchorPlan['positives'] = [];
      for (const id of members) {
        if (id === a) continue;
        const d = distance(emb, norms, a, id, dim);
        dap.add(d);
        positives.push({ id, d, low: c.floor ? d : d - c.margin, high: d + c.margin, target: d + c.margin * (1 - c.hardness) });
      }
      const plan: AnchorPlan = {
        positives,
        low: Math.min(...positives.map((p) => p.low)),
        high: Math.max(...positives.map((p) => p.high)),
        target: positives.reduce((s, p) => s + p.target, 0) / positives.length,
      };
      if (sampledSet.has(a)) sampled.push({ anchor: a, plan });
      heap.clear();
      for (let q = 0; q < cands.length; q++) {
        const j = cands[q] as number;
        const d = distance(emb, norms, a, j, dim);
        if (d <= plan.low || d >= plan.high) continue;
        const score = Math.abs(d - plan.target);
        if (score < heap.bound) heap.offer(score, j, d);
      }
      const kept = heap.sorted();
      for (const t of pick([plan], () => kept)) triplets.push({ ...t, anchor: a });
    }
  }
  return { triplets, dapBins: dap.bins, pairs: dap.pairs, sampled };
}

/** Everything both the one-thread and the two-thread search prepare on the calling thread. */
function prepare(emb: Float32Array, dim: number, labels: ArrayLike<number>, options: RestrictedMiningOptions) {
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
  const groups = [...byLabel].filter(([, members]) => members.length >= 2);
  const largest = Math.max(1, ...groups.map(([, list]) => list.length));
  const memberOffsets = new Int32Array(groups.length + 1);
  const candidateOffsets = new Int32Array(groups.length + 1);
  // Typed arrays sized for the worst case up front: no growing arrays of millions of numbers.
  const members = new Int32Array(groups.reduce((sum, [, list]) => sum + list.length, 0));
  const candidates = new Int32Array(groups.length * (k * largest + randomCount));
  let mm = 0;
  let cc = 0;
  groups.forEach(([label, list], g) => {
    members.set(list, mm);
    mm += list.length;
    for (const nb of neighbours.get(label) ?? []) for (const j of byLabel.get(nb.identity) ?? []) candidates[cc++] = j;
    for (let tries = 0, added = 0; added < randomCount && tries < randomCount * 4 && n > list.length; tries++) {
      const j = Math.floor(rng() * n);
      if (labels[j] === label) continue;
      candidates[cc++] = j;
      added++;
    }
    memberOffsets[g + 1] = mm;
    candidateOffsets[g + 1] = cc;
  });
  // Anchors whose full rows make the statistics: the same seeded choice as the exact scan.
  const eligible = Array.from(members).sort((x, y) => x - y);
  const sampledSet = new Set(shuffled(eligible, rngFor(c.seed, 'mining-stats')).slice(0, c.statsAnchors));
  const work: ScanWork = { members, memberOffsets, candidates: candidates.subarray(0, cc), candidateOffsets };
  return { c, n, norms, work, groups: groups.length, eligible: eligible.length, sampledSet };
}

function finish(emb: Float32Array, dim: number, labels: ArrayLike<number>, p: ReturnType<typeof prepare>, parts: ScanResult[]): { triplets: MinedTriplet[]; stats: MiningStats } {
  const triplets = parts.flatMap((r) => r.triplets).sort((x, y) => x.anchor - y.anchor || x.positive - y.positive);
  const dap = new PairHistogram();
  for (const r of parts) {
    r.dapBins.forEach((v, i) => (dap.bins[i]! += v));
    dap.pairs += r.pairs;
  }
  const stats = miningStats(emb, dim, labels, parts.flatMap((r) => r.sampled), dap, p.eligible, triplets.length, p.c);
  stats.memoryBoundBytes = p.n * 4 + p.work.candidates.byteLength + p.work.members.byteLength + 3 * p.sampledSet.size * Math.min(p.c.colBlock, p.n) * 4 + triplets.length * 64;
  return { triplets, stats };
}

/**
 * Mines like `mineTriplets`, but searches each anchor's negatives only among the samples of the
 * identities nearest to its own (centroid k-NN) plus a random share of the rest, instead of all
 * n samples: a negative close enough to be worth mining almost always belongs to a confusable
 * identity. Time O(n x (k x perIdentity + random) x dim) plus the centroid k-NN, instead of
 * O(n^2 x dim); memory O(n) numbers plus the candidate lists. The statistics still come from
 * full rows of sampled anchors.
 */
export function mineTripletsRestricted(emb: Float32Array, dim: number, labels: ArrayLike<number>, options: RestrictedMiningOptions = {}): { triplets: MinedTriplet[]; stats: MiningStats } {
  const p = prepare(emb, dim, labels, options);
  return finish(emb, dim, labels, p, [scanIdentities(emb, p.norms, dim, p.c, p.sampledSet, p.work, 0, p.groups)]);
}

/**
 * The same search with its scan split over two threads (this one and a worker thread sharing
 * the embeddings through shared memory): the same triplets and statistics, about half the scan time.
 */
export async function mineTripletsRestrictedParallel(emb: Float32Array, dim: number, labels: ArrayLike<number>, options: RestrictedMiningOptions = {}): Promise<{ triplets: MinedTriplet[]; stats: MiningStats }> {
  const p = prepare(emb, dim, labels, options);
  const shared = <T extends Float32Array | Int32Array>(a: T, Ctor: new (b: SharedArrayBuffer) => T): T => {
    if (a.buffer instanceof SharedArrayBuffer) return a;
    const out = new Ctor(new SharedArrayBuffer(a.byteLength));
    out.set(a as never);
    return out;
  };
  const half = Math.floor(p.groups / 2);
  const data = {
    emb: shared(emb, Float32Array), norms: shared(p.norms, Float32Array), dim, c: p.c, sampled: [...p.sampledSet],
    work: { members: shared(p.work.members, Int32Array), memberOffsets: p.work.memberOffsets, candidates: shared(p.work.candidates, Int32Array), candidateOffsets: p.work.candidateOffsets },
    from: half, to: p.groups,
  };
  const worker = new Worker(join(__dirname, 'restricted-worker.js'), { workerData: data });
  const theirs = new Promise<ScanResult>((resolve, reject) => {
    worker.once('message', (m: ScanResult) => resolve(m));
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`mining worker exited with ${code}`)));
  });
  try {
    const mine = scanIdentities(emb, p.norms, dim, p.c, p.sampledSet, p.work, 0, half);
    return finish(emb, dim, labels, p, [mine, await theirs]);
  } finally {
    void worker.terminate();
  }
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
