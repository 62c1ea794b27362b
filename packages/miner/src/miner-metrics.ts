import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of the miner (served at its /metrics); the training job is `job_id`. */
export function createMinerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'facenet_miner_' });
  const labels = ['job_id'] as const;
  return {
    registry,
    seconds: new Histogram({
      name: 'facenet_mining_seconds',
      help: 'Time to mine one checkpoint, by phase (embed, mine)',
      labelNames: ['job_id', 'phase'],
      registers: [registry],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
    }),
    embeddingsPerSecond: new Gauge({
      name: 'facenet_mining_embeddings_per_second',
      help: 'Images embedded per second for the last plan',
      labelNames: labels,
      registers: [registry],
    }),
    planVersion: new Gauge({
      name: 'facenet_mining_plan_version',
      help: 'Version of the newest published plan',
      labelNames: labels,
      registers: [registry],
    }),
    planStep: new Gauge({
      name: 'facenet_mining_plan_step',
      help: 'Checkpoint step the newest plan was mined from',
      labelNames: labels,
      registers: [registry],
    }),
    semiHard: new Gauge({
      name: 'facenet_mining_semi_hard_fraction',
      help: 'Fraction of mined negatives that are semi-hard, newest plan',
      labelNames: labels,
      registers: [registry],
    }),
    plans: new Counter({ name: 'facenet_mining_plans_total', help: 'Plans published', labelNames: labels, registers: [registry] }),
    skipped: new Counter({
      name: 'facenet_mining_skipped_total',
      help: 'Checkpoints skipped because a newer one was waiting',
      labelNames: labels,
      registers: [registry],
    }),
  };
}
