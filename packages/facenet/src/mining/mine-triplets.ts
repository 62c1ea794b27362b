import { squaredDistance } from '../eval/distances';
import { rngFor, shuffled } from '../util/random';
import { BoundedHeap } from './bounded-heap';
import { forEachDistanceTile } from './distance-tiles';
import { AnchorPlan, binOf, compile, MinedTriplet, MiningOptions, PairHistogram, pick } from './selection';

export { compile, PairHistogram, pick } from './selection';
export type { AnchorPlan, MinedTriplet, MiningOptions } from './selection';

export interface MiningStats {
  anchors: number;
  /** Anchor-positive pairs, and the fraction of them that got a negative in their window. */
  pairs: number;
  minedFraction: number;
  /** Over all negatives of the sampled anchors' pairs (estimated from 512-bin histograms on [0, 4]). */
  easy: number;
  semiHard: number;
  hard: number;
  /** Histograms of d(a,p) (all pairs) and d(a,n) (sampled anchors), 40 bins on [0, 4]. */
  dapHistogram: number[];
  danHistogram: number[];
  /** Peak bytes the scan holds beyond its inputs (tiles, heaps, histograms). */
  memoryBoundBytes: number;
}

const HIST_BINS = 512;

/** Positives, their windows and targets, per anchor (null: no positive, cannot anchor). */
export function anchorPlans(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  c: ReturnType<typeof compile>,
): (AnchorPlan | null)[] {
  const byLabel = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i] as number;
    if (!byLabel.has(l)) byLabel.set(l, []);
    byLabel.get(l)?.push(i);
  }
  return Array.from({ length: labels.length }, (_, a) => {
    const same = (byLabel.get(labels[a] as number) ?? []).filter((p) => p !== a);
    if (same.length === 0) return null;
    const positives = same.map((id) => {
      const d = squaredDistance(emb, a, emb, id, dim);
      return { id, d, low: c.floor ? d : d - c.margin, high: d + c.margin, target: d + c.margin * (1 - c.hardness) };
    });
    return {
      positives,
      low: Math.min(...positives.map((p) => p.low)),
      high: Math.max(...positives.map((p) => p.high)),
      target: positives.reduce((s, p) => s + p.target, 0) / positives.length,
    };
  });
}

/**
 * Mines one negative per anchor-positive pair from embeddings [n, dim] with labels: the
 * negative in the pair's window (d(a,p), d(a,p) + margin), or from d(a,p) - margin when the floor
 * is off, nearest to the curriculum's target distance. Distances are computed in tiles and each
 * anchor keeps only its best `candidatesPerAnchor` candidates, so memory is bounded by
 * 3 x rowBlock x colBlock x 4 bytes (tiles) + n x candidatesPerAnchor x 16 bytes (heaps)
 * + statsAnchors x 512 x 4 bytes (histograms), never n x n.
 */
export async function mineTriplets(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  options: MiningOptions = {},
): Promise<{ triplets: MinedTriplet[]; stats: MiningStats }> {
  const c = compile(options);
  const n = labels.length;
  const plans = anchorPlans(emb, dim, labels, c);
  const heaps = plans.map((p) => (p ? new BoundedHeap(c.cap) : null));
  const rowBlock = Math.min(c.rowBlock, Math.max(1, n));
  const colBlock = Math.min(c.colBlock, Math.max(1, n));
  await forEachDistanceTile(emb, emb, dim, rowBlock, colBlock, (r0, c0, tile, rows, cols) => {
    for (let r = 0; r < rows; r++) {
      const a = r0 + r;
      const plan = plans[a];
      if (!plan) continue;
      const heap = heaps[a] as BoundedHeap;
      const la = labels[a];
      const base = r * cols;
      for (let k = 0; k < cols; k++) {
        const j = c0 + k;
        if (labels[j] === la) continue;
        const d = tile[base + k] as number;
        if (d <= plan.low || d >= plan.high) continue;
        const score = Math.abs(d - plan.target);
        if (score < heap.bound) heap.offer(score, j, d);
      }
    }
  });
  const triplets = pick(plans, (a) => (heaps[a] as BoundedHeap).sorted());
  const anchorsWithPlan = plans.flatMap((p, i) => (p ? [i] : []));
  const sampled = shuffled(anchorsWithPlan, rngFor(c.seed, 'mining-stats'))
    .slice(0, c.statsAnchors)
    .map((a) => ({ anchor: a, plan: plans[a] as AnchorPlan }));
  const dap = new PairHistogram();
  for (const plan of plans) for (const p of plan?.positives ?? []) dap.add(p.d);
  const stats = await miningStats(emb, dim, labels, sampled, dap, anchorsWithPlan.length, triplets.length, c);
  stats.memoryBoundBytes = 3 * rowBlock * colBlock * 4 + n * c.cap * 16 + Math.min(c.statsAnchors, n) * n * 4;
  return { triplets, stats };
}

/**
 * Easy / semi-hard / hard fractions over every negative of a seeded sample of anchors (their
 * full rows, in one tiled pass), and the d(a,p) and d(a,n) histograms.
 */
export async function miningStats(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  sampledPlans: { anchor: number; plan: AnchorPlan }[],
  dap: PairHistogram,
  anchors: number,
  mined: number,
  c: ReturnType<typeof compile>,
): Promise<MiningStats> {
  const sampled = sampledPlans.map((s) => s.anchor);
  const hist = new Uint32Array(sampled.length * HIST_BINS);
  const sampledEmb = new Float32Array(sampled.length * dim);
  sampled.forEach((a, k) => sampledEmb.set(emb.subarray(a * dim, (a + 1) * dim), k * dim));
  const n = labels.length;
  if (sampled.length > 0) {
    await forEachDistanceTile(sampledEmb, emb, dim, sampled.length, Math.min(c.colBlock, Math.max(1, n)), (_r0, c0, tile, rows, cols) => {
      for (let r = 0; r < rows; r++) {
        const la = labels[sampled[r] as number];
        for (let k = 0; k < cols; k++)
          if (labels[c0 + k] !== la) hist[r * HIST_BINS + binOf(tile[r * cols + k] as number, HIST_BINS)]! += 1;
      }
    });
  }
  let easy = 0,
    semi = 0,
    hard = 0;
  const danHistogram = new Array<number>(40).fill(0);
  sampled.forEach((a, k) => {
    const row = hist.subarray(k * HIST_BINS, (k + 1) * HIST_BINS);
    const cum = new Float64Array(HIST_BINS + 1);
    for (let b = 0; b < HIST_BINS; b++) {
      cum[b + 1] = (cum[b] as number) + (row[b] as number);
      danHistogram[Math.floor((b * 40) / HIST_BINS)]! += row[b] as number;
    }
    const total = cum[HIST_BINS] as number;
    for (const p of (sampledPlans[k] as { plan: AnchorPlan }).plan.positives) {
      const hardCount = cum[binOf(p.d, HIST_BINS) + 1] as number;
      const semiEnd = cum[binOf(p.d + c.margin, HIST_BINS)] as number;
      hard += hardCount;
      semi += Math.max(0, semiEnd - hardCount);
      easy += total - Math.max(semiEnd, hardCount);
    }
  });
  const all = easy + semi + hard || 1;
  return {
    anchors,
    pairs: dap.pairs,
    minedFraction: dap.pairs ? mined / dap.pairs : 0,
    easy: easy / all,
    semiHard: semi / all,
    hard: hard / all,
    dapHistogram: dap.bins,
    danHistogram,
    memoryBoundBytes: 0,
  };
}

/** The same selection from the full n x n matrix held at once: the reference the blocked scan must equal (tests only). */
export async function mineTripletsBruteForce(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  options: MiningOptions = {},
): Promise<MinedTriplet[]> {
  const c = compile(options);
  const n = labels.length;
  const plans = anchorPlans(emb, dim, labels, c);
  let full = new Float32Array(0);
  await forEachDistanceTile(emb, emb, dim, n, n, (_r, _c, tile) => (full = tile.slice()));
  return pick(plans, (a) => {
    const plan = plans[a] as AnchorPlan;
    const cands: { score: number; id: number; value: number }[] = [];
    for (let j = 0; j < n; j++) {
      if (labels[j] === labels[a]) continue;
      const d = full[a * n + j] as number;
      if (d <= plan.low || d >= plan.high) continue;
      cands.push({ score: Math.abs(d - plan.target), id: j, value: d });
    }
    return cands.sort((x, y) => x.score - y.score || x.id - y.id).slice(0, c.cap);
  });
}
