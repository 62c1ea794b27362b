import { resolve } from 'node:path';
import { dataRoots, WorkerBudget } from '@facenet/protocol';
import { ConfigError } from '@facenet/core';
import { parseQueues, QueueConfig } from './scheduling/queues';

export interface CoordinatorOptions {
  /** @default process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' */
  redisUrl?: string;
  /** @default 'facenet' */
  prefix?: string;
  /** REST API interface. @default '127.0.0.1' */
  host?: string;
  /** REST API port (0 = any free port). @default 8080 */
  port?: number;
  /** Where ranks write checkpoints (shared by all workers). @default 'runs/jobs' (absolute after compile) */
  checkpointRoot?: string;
  /** A step not finished in this time is abandoned. @default 600000 */
  stepTimeoutMs?: number;
  /**
   * How long admission may take to index a job's dataset (walk a folder, stream a manifest or a
   * shard index) before the job is refused (failed, with the reason). A 10M-image manifest took
   * 27 s on a quiet 2-core machine. @default 1800000 (30 min)
   */
  admissionTimeoutMs?: number;
  /**
   * How long POST /v1/jobs waits for the dataset's verdict before it answers 202 with the job
   * `admitting` (it moves to `pending` or `failed` when indexing ends). @default 5000
   */
  admissionAnswerMs?: number;
  /** Scheduler period. @default 500 */
  tickMs?: number;
  /** After a fault, wait this long before choosing the new world, so dead workers' registrations
   * (3 missed heartbeats) have expired. @default 7000 */
  faultSettleMs?: number;
  /** How long the coordinator waits for a worker to report the weights it holds when the world
   * changes (a worker that does not answer holds nothing usable; writing them as a checkpoint
   * may take up to stepTimeoutMs). @default 15000 */
  stateQueryTimeoutMs?: number;
  /** A worker whose heartbeat lapsed but whose /healthz still takes connections is late, not lost:
   * waited for this long to register again before its job counts a fault. @default 10000 */
  lateWorkerGraceMs?: number;
  /** Faults tolerated at one step before a job fails. @default 3 */
  maxFaultsPerStep?: number;
  /** Storage faults (a checkpoint the disk refused) since the last durable checkpoint before a job
   * fails instead of pausing again. @default 3 */
  maxStorageFaults?: number;
  /** Lifetime of the coordinator's lock in Redis; renewed every third of it, apart from the
   * scheduler (whose tick may wait on workers far longer). A restarted coordinator waits out
   * at most this long for a dead one's lock. @default 15000 */
  lockMs?: number;
  /** Folders jobs may read images and pairs from. @default dataRoots() (FACENET_DATA_ROOTS, else ./data and ../shared/data) */
  dataRoots?: string[];
  /** API bearer tokens: a file of `read:TOKEN` / `admin:TOKEN` lines (and FACENET_API_TOKEN_READ/_ADMIN).
   * Required when the API binds beyond loopback. @default none */
  apiTokensFile?: string;
  /** Serve the API beyond loopback without tokens (anyone who reaches it may drive jobs). @default false */
  allowOpenApi?: boolean;
  /** Where the evaluator writes checkpoint reports (served at /v1/jobs/:id/evaluations/:step/report); '' = none. @default '' */
  reportRoot?: string;
  /** Refuse to start unless Redis evicts nothing (BullMQ loses jobs otherwise). @default true */
  requireNoeviction?: boolean;
  /** Finished jobs kept in Redis (newest first); older ones are archived beside their checkpoints. @default 1000 */
  keepFinishedJobs?: number;
  /** Finished jobs older than this many days are archived whatever their number. @default 30 */
  finishedJobDays?: number;
  /** The worker budget admission assumes while no worker is registered (a registered worker's
   * own budget replaces it): a spec whose step exceeds it is refused. @default 16 GiB at 5 GFLOP/s */
  assumedWorkerBudget?: WorkerBudget;
  /** Team queues: quotas (nominal ranks) and fair-share weights. @default parseQueues(FACENET_QUEUES): `default` only */
  queues?: QueueConfig[];
}

export type CompiledCoordinatorOptions = Required<CoordinatorOptions>;

export function compileCoordinatorOptions(o: CoordinatorOptions = {}): CompiledCoordinatorOptions {
  const c: CompiledCoordinatorOptions = {
    redisUrl: o.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    prefix: o.prefix ?? 'facenet',
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 8080,
    checkpointRoot: resolve(o.checkpointRoot ?? 'runs/jobs'),
    stepTimeoutMs: o.stepTimeoutMs ?? 600_000,
    admissionTimeoutMs: o.admissionTimeoutMs ?? 1_800_000,
    admissionAnswerMs: o.admissionAnswerMs ?? 5000,
    tickMs: o.tickMs ?? 500,
    maxFaultsPerStep: o.maxFaultsPerStep ?? 3,
    maxStorageFaults: o.maxStorageFaults ?? 3,
    stateQueryTimeoutMs: o.stateQueryTimeoutMs ?? 15_000,
    faultSettleMs: o.faultSettleMs ?? 7000,
    lateWorkerGraceMs: o.lateWorkerGraceMs ?? 10_000,
    requireNoeviction: o.requireNoeviction ?? true,
    lockMs: o.lockMs ?? 15_000,
    apiTokensFile: o.apiTokensFile ?? '',
    dataRoots: o.dataRoots ?? dataRoots(),
    allowOpenApi: o.allowOpenApi ?? false,
    reportRoot: o.reportRoot ? resolve(o.reportRoot) : '',
    keepFinishedJobs: o.keepFinishedJobs ?? 1000,
    finishedJobDays: o.finishedJobDays ?? 30,
    assumedWorkerBudget: o.assumedWorkerBudget ?? { memoryBytes: 16 * 2 ** 30, gflops: 5 },
    queues: o.queues ?? parseQueues(process.env.FACENET_QUEUES),
  };
  if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535)
    throw new ConfigError(`coordinator option port`, `must be 0-65535, got ${c.port}`);
  if (!(Number.isInteger(c.maxFaultsPerStep) && c.maxFaultsPerStep >= 0))
    throw new ConfigError(`coordinator option maxFaultsPerStep`, `must be an integer >= 0, got ${c.maxFaultsPerStep}`);
  if (!(Number.isInteger(c.maxStorageFaults) && c.maxStorageFaults >= 1))
    throw new ConfigError(`coordinator option maxStorageFaults`, `must be an integer >= 1, got ${c.maxStorageFaults}`);
  if (!(c.faultSettleMs >= 0)) throw new ConfigError(`coordinator option faultSettleMs`, `must be >= 0, got ${c.faultSettleMs}`);
  if (!(Number.isInteger(c.keepFinishedJobs) && c.keepFinishedJobs >= 0))
    throw new ConfigError(`coordinator option keepFinishedJobs`, `must be an integer >= 0, got ${c.keepFinishedJobs}`);
  if (!(Number.isFinite(c.admissionAnswerMs) && c.admissionAnswerMs >= 0))
    throw new ConfigError('coordinator option admissionAnswerMs', `must be a number >= 0, got ${c.admissionAnswerMs}`);
  for (const k of ['stepTimeoutMs', 'admissionTimeoutMs', 'tickMs', 'stateQueryTimeoutMs', 'lockMs', 'finishedJobDays'] as const)
    if (!(c[k] > 0)) throw new ConfigError(`coordinator option ${k}`, `must be > 0, got ${c[k]}`);
  return c;
}
