import type { WorkerBudget } from './step-budget';
/** Redis key names shared by coordinator and workers, all under one prefix (default 'facenet'). */
export function redisKeys(prefix: string) {
  return {
    /** Set of registered worker ids. */
    workers: `${prefix}:workers`,
    /** A worker's registration (JSON WorkerInfo), expiring unless heartbeats refresh it. */
    worker: (id: string) => `${prefix}:worker:${id}`,
    /** A worker's inbox: a stream of items (shard jobs, state queries) it reads through a consumer group. */
    workerInbox: (id: string) => `${prefix}:worker:${id}:inbox`,
    /** Every worker's answers to its inbox items, one stream the coordinator reads. */
    workResults: `${prefix}:results`,
    /** Set by the coordinator when a draining worker may leave (it is in no job's world any more). */
    workerReleased: (id: string) => `${prefix}:worker:${id}:released`,
    /** Sorted set of job ids by creation time. */
    jobs: `${prefix}:jobs`,
    /** Sorted set of sweep ids by creation time; each sweep's record (JSON) at `sweep`. */
    sweeps: `${prefix}:sweeps`,
    sweep: (id: string) => `${prefix}:sweep:${id}`,
    /** The ids of running sweeps: the coordinator's 2-second pass reads only these, never finished ones. */
    sweepsRunning: `${prefix}:sweeps:running`,
    /** Sorted set of the ids of jobs in one state, by creation time: the scheduler reads only the active ones. */
    jobsInState: (state: string) => `${prefix}:jobs:${state}`,
    /** Checkpoint folders some job restores from (a fork's start): retention never deletes them. */
    pinnedCheckpoints: `${prefix}:checkpoints:pinned`,
    /** A job's step history: a list of JSON StepRecords, oldest first, capped (one RPUSH per step). */
    jobHistory: (id: string) => `${prefix}:job:${id}:history`,
    /** A job's record (JSON). */
    job: (id: string) => `${prefix}:job:${id}`,
    /** A pause or cancel asked of a running job, taken at its next step boundary. */
    jobRequest: (id: string) => `${prefix}:job:${id}:request`,
    /** Written once when a coordinator first uses this Redis; if it vanishes, Redis lost its data. */
    epoch: `${prefix}:epoch`,
    /** Held by the running coordinator, so two never drive the same jobs. */
    coordinatorLock: `${prefix}:coordinator:lock`,
    /** BullMQ's own key prefix. */
    bull: `${prefix}-bull`,
    /** Pub/sub channel: {jobId, generation} that workers must abandon. */
    abortChannel: `${prefix}:abort`,
    /** A job's mining plans: sorted set of versions, and each plan (JSON). */
    plans: (jobId: string) => `${prefix}:plans:${jobId}`,
    plan: (jobId: string, version: number) => `${prefix}:plan:${jobId}:${version}`,
    planVersion: (jobId: string) => `${prefix}:plan-version:${jobId}`,
    /** Checkpoint steps whose events were dropped for a newer one before the miner reached them. */
    skippedCheckpoints: (jobId: string) => `${prefix}:plans:${jobId}:skipped`,
    /** The miner's registration (JSON, expiring). */
    miner: `${prefix}:miner`,
    /** Queue of checkpoint events the miner consumes. */
    checkpointQueue: 'checkpoints',
    /** Queue of the same checkpoint events for the evaluator (a BullMQ job goes to one consumer). */
    evaluationQueue: 'evaluations',
    /** A job's evaluations, one JSON EvaluationRecord per evaluated checkpoint, oldest first. */
    evaluations: (jobId: string) => `${prefix}:evaluations:${jobId}`,
    /** Checkpoint steps the evaluator skipped because a newer one of the job was waiting. */
    skippedEvaluations: (jobId: string) => `${prefix}:evaluations:${jobId}:skipped`,
    /** The evaluator's registration (JSON, expiring). */
    evaluator: `${prefix}:evaluator`,
    /** A packed dataset index (gzipped, a list of 4 MB pieces), by the sha256 of its packed form; shared by jobs on the same data. */
    datasetIndex: (id: string) => `${prefix}:dataset-index:${id}`,
    /** The ids of the jobs that use a stored dataset index: the last one removed takes the index with it. */
    datasetIndexUsers: (id: string) => `${prefix}:dataset-index:${id}:jobs`,
  };
}

export interface WorkerInfo {
  id: string;
  /** Allreduce address other ranks dial. */
  address: string;
  host: string;
  pid: number;
  backend: string;
  startedAt: string;
  /** host:port of its /metrics and /healthz. */
  metrics?: string;
  /** Set once the worker got SIGTERM: it finishes its step and leaves at the next step boundary. */
  draining?: boolean;
  /** What a step may cost on it (workers started before budgets have none). */
  budget?: WorkerBudget;
  /** The GPU of a webgpu worker: what it is, and the buffer limits a step's tensors must fit. */
  gpu?: WorkerGpu;
}

export interface WorkerGpu {
  vendor: string;
  architecture: string;
  description: string;
  /** SwiftShader or another software adapter: correct, not fast. */
  software: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}
