import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { dataRoots, defaultMemoryBudget } from '@facenet/protocol';
import { AllreduceOptions, compileAllreduceOptions, CompiledAllreduceOptions } from './allreduce/allreduce-options';
import { ConfigError } from '@facenet/core';

export interface WorkerOptions {
  /** @default process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' */
  redisUrl?: string;
  /** Prefix of every Redis key. @default 'facenet' */
  prefix?: string;
  /** @default `${hostname}-${pid}-${random}` */
  workerId?: string;
  /** The gradient ring: listen address, advertised address, chunk size, timeout. */
  allreduce?: AllreduceOptions;
  /** Registration refresh interval; the registration expires after 3 missed beats. @default 2000 */
  heartbeatMs?: number;
  /** How long a shutdown waits for the current step. @default 60000 */
  shutdownGraceMs?: number;
  /** Interface and port of /metrics and /healthz (0: any free port, advertised in the registration). @default '127.0.0.1', 0 */
  metricsHost?: string;
  metricsPort?: number;
  /** Folders datasets may live in. @default dataRoots() (FACENET_DATA_ROOTS, else ./data and ../shared/data) */
  dataRoots?: string[];
  /** The only folder checkpoints are read from and written to (shared with the coordinator). @default 'runs/jobs' */
  checkpointRoot?: string;
  /** Fault injection for tests and drills: NaN gradients at this (0-based) step of every job. @default none */
  faultNonFiniteAtStep?: number;
  /** Fault injection for tests and drills: exit right after applying this (0-based) step, before reporting it. @default none */
  faultExitAfterApplyAtStep?: number;
  /**
   * Decode the next step's images on the main thread while the compute thread computes. It keeps
   * a GPU fed; where ranks share few CPU cores it competes with their compute (2 ranks on 2
   * cores: W=2 at 80% of the two-trainer ceiling with it, 90% without; README). @default true
   */
  prefetch?: boolean;
  /**
   * Peak bytes a step may use here, advertised at registration: admission refuses specs that fit
   * no worker, and this worker refuses shard jobs above it. @default 3/4 of the machine's memory or
   * of the cgroup's limit, whichever is lower
   */
  memoryBudgetBytes?: number;
  /** Training GFLOP/s advertised for step-time estimates. @default 5 on wasm/cpu, 50 on the native backend */
  gflops?: number;
}

export type CompiledWorkerOptions = Required<
  Omit<WorkerOptions, 'allreduce' | 'faultNonFiniteAtStep' | 'faultExitAfterApplyAtStep' | 'gflops'>
> & {
  allreduce: CompiledAllreduceOptions;
  /** Undefined: the backend's default, known once it is loaded. */
  gflops?: number;
  faultNonFiniteAtStep?: number;
  faultExitAfterApplyAtStep?: number;
};

export function compileWorkerOptions(o: WorkerOptions = {}): CompiledWorkerOptions {
  const c: CompiledWorkerOptions = {
    redisUrl: o.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    prefix: o.prefix ?? 'facenet',
    workerId: o.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    allreduce: compileAllreduceOptions(o.allreduce),
    heartbeatMs: o.heartbeatMs ?? 2000,
    shutdownGraceMs: o.shutdownGraceMs ?? 60_000,
    metricsHost: o.metricsHost ?? '127.0.0.1',
    metricsPort: o.metricsPort ?? 0,
    dataRoots: o.dataRoots ?? dataRoots(),
    checkpointRoot: resolve(o.checkpointRoot ?? 'runs/jobs'),
    faultNonFiniteAtStep: o.faultNonFiniteAtStep,
    faultExitAfterApplyAtStep: o.faultExitAfterApplyAtStep,
    prefetch: o.prefetch ?? true,
    memoryBudgetBytes: o.memoryBudgetBytes ?? defaultMemoryBudget(),
    gflops: o.gflops,
  };
  if (!(Number.isInteger(c.metricsPort) && c.metricsPort >= 0 && c.metricsPort <= 65535))
    throw new ConfigError(`worker option metricsPort`, `must be 0-65535, got ${c.metricsPort}`);
  for (const k of ['heartbeatMs', 'shutdownGraceMs', 'memoryBudgetBytes', 'gflops'] as const) {
    if (c[k] === undefined) continue;
    if (!(Number.isFinite(c[k]) && c[k] > 0)) throw new ConfigError(`worker option ${k}`, `must be > 0, got ${c[k]}`);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(c.workerId))
    throw new ConfigError(`worker option workerId`, `'${c.workerId}' may use letters, digits, '.', '_' and '-' only`);
  return c;
}
