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
  /**
   * VAL over every pair of the evaluation identities' images, at FAR 1e-3 and 1e-4 (null where
   * the impostor pairs are too few to resolve that FAR), with the pair counts behind it.
   */
  allPairs?: {
    valAt1e3: number | null;
    valAt1e4: number | null;
    images: number;
    genuinePairs: number;
    impostorPairs: number;
    /** All impostor pairs, or a uniform sample of this many when there are more than 20M. */
    impostorPairsScored: number;
  };
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
