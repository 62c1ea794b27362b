/**
 * Online triplet selection on a batch's squared-distance matrix (pure JS, no tensors).
 *
 * Every strategy is reduced to a weight matrix W over the distance matrix D: the triplet loss
 * (1/T) sum relu(D[a,p] - D[a,n] + alpha) has gradient dL/dD = W, so the training step can
 * backpropagate `sum(D * W)` without ever materialising the triplets as tensors. That keeps
 * batch-all (millions of triplets at 1,800 faces) linear in memory.
 */
export type SelectionStrategy = 'semi-hard' | 'batch-hard' | 'batch-all';
export const SELECTION_STRATEGIES: readonly SelectionStrategy[] = ['semi-hard', 'batch-hard', 'batch-all'];

export interface Triplet {
  anchor: number;
  positive: number;
  negative: number;
}

export interface TripletSelection {
  /** dL/dD, row-major n x n. */
  weights: Float32Array;
  /** The loss value (mean over the triplets the strategy averages over). */
  loss: number;
  /** Number of triplets considered. */
  total: number;
  /** Triplets with non-zero loss. */
  active: number;
  /** Means of d(a,p) and d(a,n) over the considered triplets. */
  meanPositiveDistance: number;
  meanNegativeDistance: number;
  /** The chosen triplets (semi-hard and batch-hard only; batch-all has too many). */
  triplets?: Triplet[];
}

function addAt(a: Float32Array, i: number, v: number): void {
  a[i] = (a[i] as number) + v;
}

interface AnchorView {
  positives: number[];
  /** Negatives sorted by ascending distance to the anchor (ties by index, for determinism). */
  negatives: number[];
}

function anchorViews(dist: Float32Array, labels: ArrayLike<number>): (AnchorView | undefined)[] {
  const n = labels.length;
  const views: (AnchorView | undefined)[] = [];
  for (let a = 0; a < n; a++) {
    const positives: number[] = [];
    const negatives: number[] = [];
    for (let j = 0; j < n; j++) {
      if (j === a) continue;
      (labels[j] === labels[a] ? positives : negatives).push(j);
    }
    // An identity with one image in the batch cannot anchor; it still serves as a negative.
    if (positives.length === 0 || negatives.length === 0) {
      views.push(undefined);
      continue;
    }
    const row = a * n;
    negatives.sort((x, y) => (dist[row + x] as number) - (dist[row + y] as number) || x - y);
    views.push({ positives, negatives });
  }
  return views;
}

/** First position in `sorted` whose distance from the anchor is strictly greater than `value`. */
function upperBound(sorted: number[], dist: Float32Array, row: number, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((dist[row + (sorted[mid] as number)] as number) > value) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function fromTriplets(dist: Float32Array, n: number, triplets: Triplet[], margin: number): TripletSelection {
  const weights = new Float32Array(n * n);
  let loss = 0;
  let active = 0;
  let sumAp = 0;
  let sumAn = 0;
  const t = triplets.length;
  for (const { anchor, positive, negative } of triplets) {
    const dap = dist[anchor * n + positive] as number;
    const dan = dist[anchor * n + negative] as number;
    sumAp += dap;
    sumAn += dan;
    const l = dap - dan + margin;
    if (l > 0) {
      loss += l;
      active++;
      addAt(weights, anchor * n + positive, 1 / t);
      addAt(weights, anchor * n + negative, -1 / t);
    }
  }
  return {
    weights,
    loss: t ? loss / t : 0,
    total: t,
    active,
    meanPositiveDistance: t ? sumAp / t : 0,
    meanNegativeDistance: t ? sumAn / t : 0,
    triplets,
  };
}

/**
 * FaceNet's semi-hard selection: every anchor-positive pair, with the closest negative that is
 * still farther than the positive (d(a,p) < d(a,n)); such a negative is semi-hard when it lies
 * inside the margin and easy otherwise. When every negative is closer than the positive, the
 * farthest negative is taken, which avoids the collapse that the hardest negatives cause.
 */
export function semiHardTriplets(dist: Float32Array, labels: ArrayLike<number>): Triplet[] {
  const n = labels.length;
  const out: Triplet[] = [];
  anchorViews(dist, labels).forEach((view, a) => {
    if (!view) return;
    for (const p of view.positives) {
      const i = upperBound(view.negatives, dist, a * n, dist[a * n + p] as number);
      const neg = view.negatives[Math.min(i, view.negatives.length - 1)] as number;
      out.push({ anchor: a, positive: p, negative: neg });
    }
  });
  return out;
}

/** Hermans et al.'s batch-hard: per anchor, its farthest positive and its closest negative. */
export function batchHardTriplets(dist: Float32Array, labels: ArrayLike<number>): Triplet[] {
  const n = labels.length;
  const out: Triplet[] = [];
  anchorViews(dist, labels).forEach((view, a) => {
    if (!view) return;
    let p = view.positives[0] as number;
    for (const q of view.positives) if ((dist[a * n + q] as number) > (dist[a * n + p] as number)) p = q;
    out.push({ anchor: a, positive: p, negative: view.negatives[0] as number });
  });
  return out;
}

/**
 * Batch-all: every valid triplet, loss averaged over the active ones. Counted with binary
 * searches on sorted rows (O(n^2 log n)), never by enumerating the O(n^3) triplets.
 */
function batchAll(dist: Float32Array, labels: ArrayLike<number>, margin: number): TripletSelection {
  const n = labels.length;
  const weights = new Float32Array(n * n);
  let total = 0;
  let active = 0;
  let loss = 0;
  let sumAp = 0;
  let sumAn = 0;
  anchorViews(dist, labels).forEach((view, a) => {
    if (!view) return;
    const row = a * n;
    const negs = view.negatives;
    // Prefix sums of sorted negative distances give each pair's loss sum in O(1).
    const prefix = new Float64Array(negs.length + 1);
    negs.forEach((j, i) => (prefix[i + 1] = (prefix[i] as number) + (dist[row + j] as number)));
    const sumNeg = prefix[negs.length] as number;
    for (const p of view.positives) {
      const dap = dist[row + p] as number;
      // Active negatives: d(a,n) < d(a,p) + margin, i.e. a prefix of the sorted negatives.
      let lo = 0;
      let hi = negs.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((dist[row + (negs[mid] as number)] as number) < dap + margin) lo = mid + 1;
        else hi = mid;
      }
      const k = lo;
      total += negs.length;
      sumAp += dap * negs.length;
      sumAn += sumNeg;
      active += k;
      loss += k * (dap + margin) - (prefix[k] as number);
      addAt(weights, row + p, k);
      for (let i = 0; i < k; i++) addAt(weights, row + (negs[i] as number), -1);
    }
  });
  if (active > 0) for (let i = 0; i < weights.length; i++) weights[i] = (weights[i] as number) / active;
  return {
    weights,
    loss: active ? loss / active : 0,
    total,
    active,
    meanPositiveDistance: total ? sumAp / total : 0,
    meanNegativeDistance: total ? sumAn / total : 0,
  };
}

/** Chooses triplets by `strategy` and returns the loss, its gradient weights and statistics. */
export function selectTriplets(
  dist: Float32Array,
  labels: ArrayLike<number>,
  strategy: SelectionStrategy,
  margin: number,
): TripletSelection {
  const n = labels.length;
  if (dist.length !== n * n) throw new Error(`distance matrix has ${dist.length} entries, expected ${n}x${n}`);
  switch (strategy) {
    case 'semi-hard':
      return fromTriplets(dist, n, semiHardTriplets(dist, labels), margin);
    case 'batch-hard':
      return fromTriplets(dist, n, batchHardTriplets(dist, labels), margin);
    case 'batch-all':
      return batchAll(dist, labels, margin);
  }
}
