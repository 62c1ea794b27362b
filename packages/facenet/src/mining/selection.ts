/**
 * The selection rules shared by the exact and the restricted search, free of TensorFlow.js so
 * the restricted search's worker thread loads only plain code: options, each anchor's windows,
 * the pick of one negative per anchor-positive pair, the d(a,p) histogram.
 */

const HIST_MAX = 4;

export interface MiningOptions {
  /** Triplet margin alpha. @default 0.2 */
  margin?: number;
  /**
   * Where in the window a negative is wanted: the target distance is d(a,p) + margin x (1 - hardness).
   * 0 = just inside the margin (the easiest semi-hard), 1 = at d(a,p) (the hardest). @default 0.5
   */
  hardness?: number;
  /** Never take negatives closer than the positive (d(a,n) <= d(a,p)); the curriculum keeps this on while the model is young. @default true */
  floor?: boolean;
  /** Candidates kept per anchor while scanning. @default 16 */
  candidatesPerAnchor?: number;
  /** Tile size of the blocked distance computation. @default 1024 x 4096 */
  rowBlock?: number;
  colBlock?: number;
  /** Anchors sampled for the easy / semi-hard / hard statistics. @default 256 */
  statsAnchors?: number;
  seed?: number;
}

export interface MinedTriplet {
  anchor: number;
  positive: number;
  negative: number;
  dap: number;
  dan: number;
}

export interface AnchorPlan {
  positives: { id: number; d: number; low: number; high: number; target: number }[];
  low: number;
  high: number;
  target: number;
}

export function compile(o: MiningOptions) {
  return {
    margin: o.margin ?? 0.2,
    hardness: Math.min(1, Math.max(0, o.hardness ?? 0.5)),
    floor: o.floor ?? true,
    cap: o.candidatesPerAnchor ?? 16,
    rowBlock: o.rowBlock ?? 1024,
    colBlock: o.colBlock ?? 4096,
    statsAnchors: o.statsAnchors ?? 256,
    seed: o.seed ?? 1,
  };
}

/**
 * For each positive of one anchor's plan, the kept candidate inside that pair's window closest to
 * its target (ties: the smaller id), handed to `take`.
 */
export function pickForAnchor(
  plan: AnchorPlan,
  cands: { id: number; value: number }[],
  take: (positive: number, negative: number, dap: number, dan: number) => void,
): void {
  for (const p of plan.positives) {
    let best: { id: number; value: number } | undefined;
    for (const c of cands) {
      if (c.value <= p.low || c.value >= p.high) continue;
      if (
        !best ||
        Math.abs(c.value - p.target) < Math.abs(best.value - p.target) ||
        (Math.abs(c.value - p.target) === Math.abs(best.value - p.target) && c.id < best.id)
      )
        best = c;
    }
    if (best) take(p.id, best.id, p.d, best.value);
  }
}

/** Per anchor-positive pair, the kept candidate inside the pair's window closest to its target. */
export function pick(plans: (AnchorPlan | null)[], kept: (a: number) => { id: number; value: number }[]): MinedTriplet[] {
  const out: MinedTriplet[] = [];
  plans.forEach((plan, anchor) => {
    if (plan) pickForAnchor(plan, kept(anchor), (positive, negative, dap, dan) => out.push({ anchor, positive, negative, dap, dan }));
  });
  return out;
}

/** Bin of distance d among `bins` equal bins on [0, 4]. */
export function binOf(d: number, bins: number): number {
  return Math.min(bins - 1, Math.max(0, Math.floor((d / HIST_MAX) * bins)));
}

/** The d(a,p) histogram (40 bins on [0, 4]) and count of anchor-positive pairs, built as pairs are seen. */
export class PairHistogram {
  readonly bins = new Array<number>(40).fill(0);
  pairs = 0;

  add(d: number): void {
    this.bins[binOf(d, 40)]! += 1;
    this.pairs++;
  }
}
