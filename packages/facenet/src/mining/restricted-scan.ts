/**
 * The restricted search's scan: each anchor of some identities against its identity's candidate
 * negatives. Plain code only (no TensorFlow.js), so the worker thread that runs half of it starts
 * small; its triplets come back as columns (TripletTable), transferred without a copy.
 */
import { BoundedHeap } from './bounded-heap';
import { AnchorPlan, compile, PairHistogram, pickForAnchor } from './selection';
import { TripletTable, TripletTableBuilder } from './triplet-table';

/**
 * Squared distance from |a|^2 + |b|^2 - 2 a.b: one multiply-add per dimension, four independent
 * sums so the CPU overlaps them (this loop is the miner's hot path).
 */
function distance(emb: Float32Array, norms: Float32Array, a: number, b: number, dim: number): number {
  const oa = a * dim,
    ob = b * dim;
  let s0 = 0,
    s1 = 0,
    s2 = 0,
    s3 = 0;
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

/** The identities to scan: their members and candidate negatives, flattened (shareable with a worker thread). */
export interface ScanWork {
  members: Int32Array;
  memberOffsets: Int32Array;
  candidates: Int32Array;
  candidateOffsets: Int32Array;
}

/** What scanning some identities yields, merged across threads. */
export interface ScanResult {
  triplets: TripletTable;
  dapBins: number[];
  pairs: number;
  sampled: { anchor: number; plan: AnchorPlan }[];
}

/** Scans identities [from, to) of `work`: each anchor against its identity's candidates. */
export function scanIdentities(
  emb: Float32Array,
  norms: Float32Array,
  dim: number,
  c: ReturnType<typeof compile>,
  sampledSet: ReadonlySet<number>,
  work: ScanWork,
  from: number,
  to: number,
): ScanResult {
  const heap = new BoundedHeap(c.cap);
  const triplets = new TripletTableBuilder();
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
      pickForAnchor(plan, heap.sorted(), (positive, negative, dap, dan) => triplets.push(a, positive, negative, dap, dan));
    }
  }
  return { triplets: triplets.build(), dapBins: dap.bins, pairs: dap.pairs, sampled };
}
