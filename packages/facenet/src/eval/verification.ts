/**
 * Verification metrics on pair distances (squared L2; a pair is accepted as "same" when its
 * distance is <= the threshold). FaceNet's definitions:
 *   VAL(d) = |true accepts| / |same pairs|,  FAR(d) = |false accepts| / |different pairs|.
 */
export interface ValFar {
  val: number;
  far: number;
  trueAccepts: number;
  falseAccepts: number;
  same: number;
  different: number;
}

export function valFarAt(dist: ArrayLike<number>, same: ArrayLike<boolean>, threshold: number): ValFar {
  let ta = 0,
    fa = 0,
    ns = 0,
    nd = 0;
  for (let i = 0; i < dist.length; i++) {
    const accept = (dist[i] as number) <= threshold;
    if (same[i]) {
      ns++;
      if (accept) ta++;
    } else {
      nd++;
      if (accept) fa++;
    }
  }
  return { val: ns ? ta / ns : 0, far: nd ? fa / nd : 0, trueAccepts: ta, falseAccepts: fa, same: ns, different: nd };
}

export function accuracyAt(dist: ArrayLike<number>, same: ArrayLike<boolean>, threshold: number): number {
  let correct = 0;
  for (let i = 0; i < dist.length; i++) if ((dist[i] as number) <= threshold === same[i]) correct++;
  return dist.length ? correct / dist.length : 0;
}

/** The threshold of best accuracy: an exact sweep over midpoints between sorted distances. */
export function bestAccuracyThreshold(dist: ArrayLike<number>, same: ArrayLike<boolean>): { threshold: number; accuracy: number } {
  const order = Array.from({ length: dist.length }, (_, i) => i).sort((a, b) => (dist[a] as number) - (dist[b] as number));
  const totalDiff = order.reduce((n, i) => n + (same[i] ? 0 : 1), 0);
  // Threshold below everything: all rejected, correct = number of different pairs.
  let correct = totalDiff;
  let best = correct;
  let bestT = order.length ? (dist[order[0] as number] as number) - 1e-6 : 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k] as number;
    correct += same[i] ? 1 : -1;
    const d = dist[i] as number;
    const next = k + 1 < order.length ? (dist[order[k + 1] as number] as number) : d + 1e-6;
    if (next === d) continue; // ties move together
    if (correct > best) {
      best = correct;
      bestT = (d + next) / 2;
    }
  }
  return { threshold: bestT, accuracy: order.length ? best / order.length : 0 };
}

/**
 * The threshold at which FAR equals `target` on these pairs, interpolated linearly between the
 * sorted different-pair distances (FAR steps by 1/m at each). 0 when no different pairs.
 */
export function thresholdForFar(dist: ArrayLike<number>, same: ArrayLike<boolean>, target: number): number {
  const diffs: number[] = [];
  for (let i = 0; i < dist.length; i++) if (!same[i]) diffs.push(dist[i] as number);
  if (diffs.length === 0) return 0;
  diffs.sort((a, b) => a - b);
  const k = target * diffs.length; // fractional number of false accepts allowed
  const lo = Math.floor(k);
  const frac = k - lo;
  const below = lo === 0 ? 0 : (diffs[lo - 1] as number);
  if (lo >= diffs.length) return diffs[diffs.length - 1] as number;
  // Between the lo-th and (lo+1)-th smallest different-pair distance: accepts exactly lo of them.
  return below + frac * ((diffs[lo] as number) - below);
}

export interface FoldReport {
  accuracy: number;
  accuracyStd: number;
  /** Per fold: the best-accuracy threshold of the other folds. */
  thresholds: number[];
  val: number;
  valStd: number;
  far: number;
  farTarget: number;
  /** Best-accuracy threshold on all pairs (for deployment). */
  threshold: number;
  auc: number;
  pairs: number;
  folds: number;
}

function meanStd(xs: number[]): [number, number] {
  const m = xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const v = xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length);
  return [m, Math.sqrt(v)];
}

/**
 * LFW protocol: for each fold, thresholds are chosen on the other folds (best accuracy; and the
 * FAR = target threshold for VAL) and applied to the held-out fold; means and std over folds.
 */
export function evaluateFolds(dist: ArrayLike<number>, same: ArrayLike<boolean>, fold: ArrayLike<number>, farTarget = 1e-3): FoldReport {
  const folds = [...new Set(Array.from(fold))].sort((a, b) => a - b);
  const accs: number[] = [],
    vals: number[] = [],
    fars: number[] = [],
    thresholds: number[] = [];
  for (const f of folds) {
    const trainD: number[] = [],
      trainS: boolean[] = [],
      testD: number[] = [],
      testS: boolean[] = [];
    for (let i = 0; i < dist.length; i++) {
      if (fold[i] === f) {
        testD.push(dist[i] as number);
        testS.push(same[i] as boolean);
      } else {
        trainD.push(dist[i] as number);
        trainS.push(same[i] as boolean);
      }
    }
    // A single fold has no "other folds": fall back to choosing on itself (optimistic, flagged by folds=1).
    const [fitD, fitS] = folds.length > 1 ? [trainD, trainS] : [testD, testS];
    const t = bestAccuracyThreshold(fitD, fitS).threshold;
    thresholds.push(t);
    accs.push(accuracyAt(testD, testS, t));
    const tf = thresholdForFar(fitD, fitS, farTarget);
    const vf = valFarAt(testD, testS, tf);
    vals.push(vf.val);
    fars.push(vf.far);
  }
  const [accuracy, accuracyStd] = meanStd(accs);
  const [val, valStd] = meanStd(vals);
  return {
    accuracy,
    accuracyStd,
    thresholds,
    val,
    valStd,
    far: meanStd(fars)[0],
    farTarget,
    threshold: bestAccuracyThreshold(dist, same).threshold,
    auc: roc(dist, same).auc,
    pairs: dist.length,
    folds: folds.length,
  };
}

export interface Roc {
  fpr: number[];
  tpr: number[];
  thresholds: number[];
  auc: number;
}

/** ROC over every distinct threshold, and its area (trapezoids). */
export function roc(dist: ArrayLike<number>, same: ArrayLike<boolean>): Roc {
  const order = Array.from({ length: dist.length }, (_, i) => i).sort((a, b) => (dist[a] as number) - (dist[b] as number));
  let ns = 0,
    nd = 0;
  for (let i = 0; i < dist.length; i++) {
    if (same[i]) ns++;
    else nd++;
  }
  const fpr = [0],
    tpr = [0],
    thresholds = [-Infinity];
  let tp = 0,
    fp = 0;
  for (let k = 0; k < order.length; k++) {
    const i = order[k] as number;
    if (same[i]) tp++;
    else fp++;
    const d = dist[i] as number;
    if (k + 1 < order.length && dist[order[k + 1] as number] === d) continue;
    fpr.push(nd ? fp / nd : 0);
    tpr.push(ns ? tp / ns : 0);
    thresholds.push(d);
  }
  let auc = 0;
  for (let k = 1; k < fpr.length; k++)
    auc += (((fpr[k] as number) - (fpr[k - 1] as number)) * ((tpr[k] as number) + (tpr[k - 1] as number))) / 2;
  return { fpr, tpr, thresholds, auc };
}
