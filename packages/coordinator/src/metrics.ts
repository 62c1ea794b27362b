import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Values read from Redis when Prometheus scrapes (not pushed by the step loop). */
export interface ScrapeSources {
  queueDepths: () => Promise<{ queue: string; state: string; count: number }[]>;
  /** Seconds since each running job's last checkpoint. */
  checkpointAges: () => Promise<{ jobId: string; seconds: number }[]>;
}

/** Prometheus metrics of the coordinator (served at /metrics). */
export function createMetrics(sources?: ScrapeSources) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'facenet_coordinator_' });
  // The training job is `job_id`: Prometheus owns `job` (the scrape target) and `instance`.
  const labels = ['job_id'] as const;
  return {
    registry,
    step: new Gauge({ name: 'facenet_job_step', help: 'Steps committed', labelNames: labels, registers: [registry] }),
    loss: new Gauge({ name: 'facenet_job_loss', help: 'Triplet loss of the last step', labelNames: labels, registers: [registry] }),
    classificationLoss: new Gauge({
      name: 'facenet_job_classification_loss',
      help: 'Classification (softmax/cosface) loss of the last step; 0 when the job has none',
      labelNames: labels,
      registers: [registry],
    }),
    active: new Gauge({
      name: 'facenet_job_active_triplet_fraction',
      help: 'Fraction of triplets with non-zero loss',
      labelNames: labels,
      registers: [registry],
    }),
    imagesPerSecond: new Gauge({
      name: 'facenet_job_images_per_second',
      help: 'Images per second of the last step',
      labelNames: labels,
      registers: [registry],
    }),
    minerLag: new Gauge({
      name: 'facenet_job_miner_lag_steps',
      help: 'Current step minus the step of the mining plan in use',
      labelNames: labels,
      registers: [registry],
    }),
    worldSize: new Gauge({ name: 'facenet_job_world_size', help: 'Ranks in the job', labelNames: labels, registers: [registry] }),
    phase: new Histogram({
      name: 'facenet_step_phase_seconds',
      help: 'Per-rank step time by phase',
      labelNames: ['job_id', 'phase'],
      registers: [registry],
      buckets: [0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    }),
    allreduceBytes: new Counter({
      name: 'facenet_allreduce_bytes_total',
      help: 'Bytes sent by ranks in allreduce',
      labelNames: labels,
      registers: [registry],
    }),
    nonFinite: new Counter({
      name: 'facenet_job_non_finite_rollbacks_total',
      help: 'Steps rejected by the non-finite guard and retried with a lower learning rate',
      labelNames: labels,
      registers: [registry],
    }),
    learningRateScale: new Gauge({
      name: 'facenet_job_learning_rate_scale',
      help: 'Factor on the learning rate schedule (lowered by non-finite rollbacks)',
      labelNames: labels,
      registers: [registry],
    }),
    stateLost: new Gauge({
      name: 'facenet_coordinator_state_lost',
      help: '1 once the coordinator stopped because its Redis state or lock vanished',
      registers: [registry],
    }),
    queueJobs: new Gauge({
      name: 'facenet_queue_jobs',
      help: 'Items per queue and state: each worker inbox (worker-<id>: waiting, active = taken, not answered), and the BullMQ queues checkpoints (miner) and evaluations (waiting, active, failed)',
      labelNames: ['queue', 'state'],
      registers: [registry],
      async collect() {
        if (!sources) return;
        this.reset();
        for (const d of await sources.queueDepths()) this.set({ queue: d.queue, state: d.state }, d.count);
      },
    }),
    checkpointAge: new Gauge({
      name: 'facenet_job_checkpoint_age_seconds',
      help: "Seconds since a running job's last checkpoint (since it started, if none)",
      labelNames: labels,
      registers: [registry],
      async collect() {
        if (!sources) return;
        this.reset();
        for (const a of await sources.checkpointAges()) this.set({ job_id: a.jobId }, a.seconds);
      },
    }),
    faults: new Counter({
      name: 'facenet_job_faults_total',
      help: 'Steps abandoned (worker lost, step failed)',
      labelNames: labels,
      registers: [registry],
    }),
    preemptions: new Counter({
      name: 'facenet_queue_preemptions_total',
      help: 'Ranks taken from running jobs at a step boundary, by the victim queue and why (priority, reclaim, backfill)',
      labelNames: ['queue', 'reason'],
      registers: [registry],
    }),
    queueRanks: new Gauge({
      name: 'facenet_queue_running_ranks',
      help: 'Ranks held by running jobs of the queue',
      labelNames: ['queue'],
      registers: [registry],
    }),
    queuePending: new Gauge({
      name: 'facenet_queue_pending_jobs',
      help: 'Jobs waiting in the queue',
      labelNames: ['queue'],
      registers: [registry],
    }),
    queueNominal: new Gauge({
      name: 'facenet_queue_nominal_ranks',
      help: 'Ranks the queue may always reclaim (its quota)',
      labelNames: ['queue'],
      registers: [registry],
    }),
    schedulerSeconds: new Histogram({
      name: 'facenet_scheduler_decision_seconds',
      help: 'Time of one scheduling decision (planAllowances) over the active jobs',
      registers: [registry],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1],
    }),
    sweepTrials: new Gauge({
      name: 'facenet_sweep_trials',
      help: "A sweep's trials by state (running, completed, stopped, failed, cancelled)",
      labelNames: ['sweep_id', 'state'],
      registers: [registry],
    }),
    sweepBest: new Gauge({
      name: 'facenet_sweep_best_score',
      help: "The best objective score of a sweep's trials so far",
      labelNames: ['sweep_id'],
      registers: [registry],
    }),
    storageFaults: new Counter({
      name: 'facenet_job_storage_faults_total',
      help: 'Checkpoints storage refused (full disk, read-only volume, bad read-back); each pauses the job',
      labelNames: labels,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
