/**
 * One checkpoint's verification scores, as the evaluator writes them (Redis list
 * `redisKeys().evaluations(jobId)`) and the API shows them (GET /v1/jobs/:id/evaluations).
 */
export interface EvaluationRecord {
  jobId: string;
  step: number;
  checkpointDir: string;
  /** Which pairs: the job's held-out identities, or an LFW-format pairs file. */
  set: 'holdout' | 'pairs-file';
  pairs: number;
  folds: number;
  /** N-fold accuracy, each fold's threshold chosen on the other folds. */
  accuracy: number;
  accuracyStd: number;
  /** Validation rate at FAR = farTarget, and the FAR measured at that threshold. */
  val: number;
  valStd: number;
  far: number;
  farTarget: number;
  auc: number;
  /** Best-accuracy distance threshold over all pairs. */
  threshold: number;
  droppedPairs: number;
  skippedImages: number;
  seconds: number;
  at: string;
  /** The checkpoint's HTML report, relative to the report root (GET /v1/jobs/:id/evaluations/:step/report); absent without one. */
  report?: string;
}

/** The best checkpoint by VAL (ties: higher accuracy, then the later step). */
export function bestEvaluation(evals: readonly EvaluationRecord[]): EvaluationRecord | null {
  let best: EvaluationRecord | null = null;
  for (const e of evals) {
    if (
      !best ||
      e.val > best.val ||
      (e.val === best.val && (e.accuracy > best.accuracy || (e.accuracy === best.accuracy && e.step > best.step)))
    )
      best = e;
  }
  return best;
}
