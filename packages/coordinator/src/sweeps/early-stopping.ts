import type { SweepSpec } from '@facenet/protocol';

/** A trial's scores at its evaluations, oldest first, oriented so that higher is better. */
export interface TrialScores {
  index: number;
  scores: number[];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/**
 * Why `trial` should stop now, or undefined. Scores are compared at the same evaluation count
 * (the k-th checkpoint of each trial), higher better. median: its best score up to k is below the
 * median of the others' best scores up to k (Google Vizier's median stopping rule). asha: at each
 * rung k = grace x eta^r it reached, it must be in the top 1/eta of the trials that reached k.
 * Nothing is stopped before `graceEvaluations` scores, or with fewer than `minTrials` other trials
 * to compare with.
 */
export function stopReason(rule: SweepSpec['earlyStopping'], trial: TrialScores, others: readonly TrialScores[]): string | undefined {
  const k = trial.scores.length;
  if (rule.rule === 'none' || k < rule.graceEvaluations) return undefined;
  const bestUpTo = (s: number[], n: number) => Math.max(...s.slice(0, n));
  if (rule.rule === 'median') {
    const peers = others.filter((o) => o.scores.length >= k).map((o) => bestUpTo(o.scores, k));
    if (peers.length < rule.minTrials) return undefined;
    const mine = bestUpTo(trial.scores, k);
    const cut = median(peers);
    return mine < cut
      ? `median stopping at evaluation ${k}: best ${mine.toFixed(4)} < median ${cut.toFixed(4)} of ${peers.length} trials`
      : undefined;
  }
  for (let rung = rule.graceEvaluations; rung <= k; rung *= rule.eta) {
    const reached = [trial, ...others].filter((o) => o.scores.length >= rung);
    if (reached.length - 1 < rule.minTrials) return undefined;
    const ranked = reached.map((o) => ({ index: o.index, score: bestUpTo(o.scores, rung) })).sort((a, b) => b.score - a.score);
    const keep = Math.max(1, Math.floor(reached.length / rule.eta));
    const place = ranked.findIndex((r) => r.index === trial.index);
    if (place >= keep) return `asha at rung ${rung} (evaluations): ranked ${place + 1} of ${reached.length}, the top ${keep} continue`;
  }
  return undefined;
}
