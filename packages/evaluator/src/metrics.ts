import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of the evaluator (served at /metrics); the training job is `job_id`. */
export function createEvaluatorMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'facenet_evaluator_' });
  const labels = ['job_id'] as const;
  const gauge = (name: string, help: string) => new Gauge({ name, help, labelNames: labels, registers: [registry] });
  return {
    registry,
    val: gauge('facenet_evaluation_val', "Validation rate at the job's target FAR (default 1e-3), newest evaluated checkpoint"),
    far: gauge('facenet_evaluation_far', 'FAR measured at the VAL threshold, newest evaluated checkpoint'),
    accuracy: gauge('facenet_evaluation_accuracy', 'N-fold verification accuracy, newest evaluated checkpoint'),
    auc: gauge('facenet_evaluation_auc', 'Area under the ROC curve, newest evaluated checkpoint'),
    threshold: gauge('facenet_evaluation_threshold', 'Best-accuracy squared-distance threshold, newest evaluated checkpoint'),
    step: gauge('facenet_evaluation_checkpoint_step', 'Step of the newest evaluated checkpoint'),
    bestVal: gauge('facenet_evaluation_best_val', "Best VAL over the job's evaluated checkpoints"),
    valAllPairs: new Gauge({
      name: 'facenet_evaluation_val_all_pairs',
      help: "VAL at FAR `far` over every pair of the evaluation identities' images, newest evaluated checkpoint (absent where the impostor pairs cannot resolve that FAR)",
      labelNames: ['job_id', 'far'],
      registers: [registry],
    }),
    seconds: new Histogram({
      name: 'facenet_evaluation_seconds',
      help: 'Time to evaluate one checkpoint (embed and score)',
      labelNames: labels,
      registers: [registry],
      buckets: [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
    }),
    evaluations: new Counter({
      name: 'facenet_evaluations_total',
      help: 'Checkpoints evaluated',
      labelNames: labels,
      registers: [registry],
    }),
    skipped: new Counter({
      name: 'facenet_evaluations_skipped_total',
      help: 'Checkpoints skipped because a newer one of the job was waiting',
      labelNames: labels,
      registers: [registry],
    }),
    failures: new Counter({
      name: 'facenet_evaluation_failures_total',
      help: 'Checkpoints whose evaluation failed',
      labelNames: labels,
      registers: [registry],
    }),
  };
}

export type EvaluatorMetrics = ReturnType<typeof createEvaluatorMetrics>;
