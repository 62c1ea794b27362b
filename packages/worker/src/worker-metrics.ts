import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one worker (served at its /metrics); the training job is `job_id`. */
export function createWorkerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'facenet_worker_' });
  return {
    registry,
    info: new Gauge({
      name: 'facenet_worker_info',
      help: 'Always 1; labels name the worker, its compute backend and its GPU (webgpu; empty otherwise)',
      labelNames: ['worker_id', 'backend', 'gpu'],
      registers: [registry],
    }),
    gpuMaxBufferBytes: new Gauge({
      name: 'facenet_worker_gpu_max_buffer_bytes',
      help: "The largest buffer this worker's GPU allocates (webgpu): one tensor of a step must fit",
      registers: [registry],
    }),
    phase: new Histogram({
      name: 'facenet_worker_step_phase_seconds',
      help: "This worker's step time by phase (data, compute, allreduce, optimizer, checkpoint)",
      labelNames: ['job_id', 'phase'],
      registers: [registry],
      buckets: [0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    }),
    refusedItems: new Counter({
      name: 'facenet_worker_refused_items_total',
      help: 'Inbox items refused unrun, and abort messages ignored (reason "abort ..."): unsigned, signed with another key than FACENET_WORK_KEY, stale or malformed',
      labelNames: ['reason'],
      registers: [registry],
    }),
    cacheHits: new Counter({
      name: 'facenet_worker_data_cache_hits_total',
      help: 'Reads of remote dataset bytes (shards over HTTP or S3) served from the local disk cache',
      registers: [registry],
    }),
    cacheMisses: new Counter({
      name: 'facenet_worker_data_cache_misses_total',
      help: 'Reads of remote dataset bytes that went to the network',
      registers: [registry],
    }),
    fetchedBytes: new Counter({
      name: 'facenet_worker_data_fetched_bytes_total',
      help: 'Dataset bytes fetched over the network (cache misses)',
      registers: [registry],
    }),
    fetchSeconds: new Histogram({
      name: 'facenet_worker_data_fetch_seconds',
      help: 'Time of one fetch of remote dataset bytes (retries included)',
      registers: [registry],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    }),
    steps: new Counter({
      name: 'facenet_worker_steps_total',
      help: 'Steps run, by outcome (applied, non_finite: rejected by the guard, failed)',
      labelNames: ['job_id', 'outcome'],
      registers: [registry],
    }),
    allreduceBytes: new Counter({
      name: 'facenet_worker_allreduce_bytes_total',
      help: 'Gradient bytes this rank sent in allreduce, by algorithm (ring, recursive-doubling)',
      labelNames: ['job_id', 'algorithm'],
      registers: [registry],
    }),
    allreduceSeconds: new Counter({
      name: 'facenet_worker_allreduce_seconds_total',
      help: 'Time this rank spent in allreduce, by algorithm (ring, recursive-doubling)',
      labelNames: ['job_id', 'algorithm'],
      registers: [registry],
    }),
    tensors: new Gauge({
      name: 'facenet_worker_compute_tensors',
      help: 'Tensors the compute thread holds after the last step (model, optimizer slots; growth is a leak)',
      registers: [registry],
    }),
    step: new Gauge({ name: 'facenet_worker_step', help: 'Last step this worker finished', labelNames: ['job_id'], registers: [registry] }),
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
