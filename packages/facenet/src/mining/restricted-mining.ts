import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { rngFor, shuffled } from '../util/random';
import { confusableIdentities } from './confusable';
import { MiningStats, miningStats } from './mine-triplets';
import { scanIdentities, ScanResult, ScanWork } from './restricted-scan';
import { compile, MinedTriplet, MiningOptions, PairHistogram } from './selection';
import { TripletTable } from './triplet-table';

export interface RestrictedMiningOptions extends MiningOptions {
  /** Identities whose samples every anchor's negatives are drawn from: its nearest by centroid. @default 24 */
  neighbourIdentities?: number;
  /** Extra candidates per identity drawn at random from all other identities. @default 32 */
  randomCandidates?: number;
}

/** Triplets as the searches return them: an array (exact scan) or columns (restricted search). */
export type Triplets = Iterable<MinedTriplet> & { readonly length: number };

/** An Int32Array or Float32Array in shared memory, so the scan's worker thread reads it without a copy. */
function sharedArray<T extends Int32Array | Float32Array>(
  Ctor: { new (b: SharedArrayBuffer): T; BYTES_PER_ELEMENT: number },
  n: number,
): T {
  return new Ctor(new SharedArrayBuffer(n * Ctor.BYTES_PER_ELEMENT));
}

/** Everything both the one-thread and the two-thread search prepare on the calling thread. */
async function prepare(emb: Float32Array, dim: number, labels: ArrayLike<number>, options: RestrictedMiningOptions) {
  const c = compile(options);
  const k = options.neighbourIdentities ?? 24;
  const randomCount = options.randomCandidates ?? 32;
  const n = labels.length;
  const norms = sharedArray(Float32Array, n);
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
  const neighbours = await confusableIdentities(emb, dim, labels, k);
  const rng = rngFor(c.seed, 'restricted-mining');
  const groups = [...byLabel].filter(([, members]) => members.length >= 2);
  const largest = Math.max(1, ...groups.map(([, list]) => list.length));
  const memberOffsets = new Int32Array(groups.length + 1);
  const candidateOffsets = new Int32Array(groups.length + 1);
  // Typed arrays sized for the worst case up front: no growing arrays of millions of numbers.
  const members = sharedArray(
    Int32Array,
    groups.reduce((sum, [, list]) => sum + list.length, 0),
  );
  const candidates = sharedArray(Int32Array, groups.length * (k * largest + randomCount));
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

/** Merges the parts (in identity order: the same table from one thread or two). */
async function finish(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  p: Awaited<ReturnType<typeof prepare>>,
  parts: ScanResult[],
): Promise<{ triplets: TripletTable; stats: MiningStats }> {
  const triplets = TripletTable.concat(parts.map((r) => r.triplets));
  const dap = new PairHistogram();
  for (const r of parts) {
    r.dapBins.forEach((v, i) => (dap.bins[i]! += v));
    dap.pairs += r.pairs;
  }
  const stats = await miningStats(
    emb,
    dim,
    labels,
    parts.flatMap((r) => r.sampled),
    dap,
    p.eligible,
    triplets.length,
    p.c,
  );
  stats.memoryBoundBytes =
    p.n * 4 +
    p.work.candidates.byteLength +
    p.work.members.byteLength +
    3 * p.sampledSet.size * Math.min(p.c.colBlock, p.n) * 4 +
    triplets.length * 28;
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
export async function mineTripletsRestricted(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  options: RestrictedMiningOptions = {},
): Promise<{ triplets: TripletTable; stats: MiningStats }> {
  const p = await prepare(emb, dim, labels, options);
  return finish(emb, dim, labels, p, [scanIdentities(emb, p.norms, dim, p.c, p.sampledSet, p.work, 0, p.groups)]);
}

/**
 * The same search with its scan split over two threads (this one and a worker thread sharing
 * the embeddings through shared memory): the same triplets and statistics, about half the scan
 * time. Pass `emb` in a SharedArrayBuffer (as the miner does) to spare a copy of it.
 */
export async function mineTripletsRestrictedParallel(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  options: RestrictedMiningOptions = {},
): Promise<{ triplets: TripletTable; stats: MiningStats }> {
  const p = await prepare(emb, dim, labels, options);
  let sharedEmb = emb;
  if (!(emb.buffer instanceof SharedArrayBuffer)) {
    sharedEmb = sharedArray(Float32Array, emb.length);
    sharedEmb.set(emb);
  }
  const half = Math.floor(p.groups / 2);
  const data = {
    emb: sharedEmb,
    norms: p.norms,
    dim,
    c: p.c,
    sampled: [...p.sampledSet],
    work: p.work,
    from: half,
    to: p.groups,
  };
  const worker = new Worker(join(__dirname, 'restricted-worker.js'), { workerData: data });
  const theirs = new Promise<ScanResult>((resolve, reject) => {
    worker.once('message', (m: ScanResult) => resolve({ ...m, triplets: TripletTable.from(m.triplets) }));
    worker.once('error', reject);
    worker.once('exit', (code) => code !== 0 && reject(new Error(`mining worker exited with ${code}`)));
  });
  try {
    const mine = scanIdentities(emb, p.norms, dim, p.c, p.sampledSet, p.work, 0, half);
    return await finish(emb, dim, labels, p, [mine, await theirs]);
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
export function miningRecall(exact: Triplets, restricted: Triplets, targetOf: (t: MinedTriplet) => number, tolerance = 1e-5): number {
  if (exact.length === 0) return 1;
  const found = new Map<string, MinedTriplet>();
  for (const t of restricted) found.set(`${t.anchor},${t.positive}`, t);
  let good = 0;
  for (const e of exact) {
    const r = found.get(`${e.anchor},${e.positive}`);
    if (r && Math.abs(r.dan - targetOf(r)) <= Math.abs(e.dan - targetOf(e)) + tolerance) good++;
  }
  return good / exact.length;
}
