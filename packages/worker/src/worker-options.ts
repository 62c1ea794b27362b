import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';

export interface WorkerOptions {
  /** @default process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' */
  redisUrl?: string;
  /** Prefix of every Redis key. @default 'facenet' */
  prefix?: string;
  /** @default `${hostname}-${pid}-${random}` */
  workerId?: string;
  /** Allreduce server interface. @default '127.0.0.1' */
  host?: string;
  /** Allreduce server port (0 = any free port). @default 0 */
  port?: number;
  /** Address peers dial, e.g. the pod's DNS name in Kubernetes. @default host:port */
  advertiseAddress?: string;
  /** Registration refresh interval; the registration expires after 3 missed beats. @default 2000 */
  heartbeatMs?: number;
  /** @default 1 MiB */
  chunkBytes?: number;
  /** Wait for the ring predecessor before aborting a step. @default 120000 */
  allreduceTimeoutMs?: number;
  /** How long a shutdown waits for the current step. @default 60000 */
  shutdownGraceMs?: number;
}

export type CompiledWorkerOptions = Required<Omit<WorkerOptions, 'advertiseAddress'>> & { advertiseAddress: string | undefined };

export function compileWorkerOptions(o: WorkerOptions = {}): CompiledWorkerOptions {
  const c: CompiledWorkerOptions = {
    redisUrl: o.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    prefix: o.prefix ?? 'facenet',
    workerId: o.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    advertiseAddress: o.advertiseAddress,
    heartbeatMs: o.heartbeatMs ?? 2000,
    chunkBytes: o.chunkBytes ?? 1 << 20,
    allreduceTimeoutMs: o.allreduceTimeoutMs ?? 120_000,
    shutdownGraceMs: o.shutdownGraceMs ?? 60_000,
  };
  for (const k of ['heartbeatMs', 'chunkBytes', 'allreduceTimeoutMs', 'shutdownGraceMs'] as const) {
    if (!(Number.isFinite(c[k]) && c[k] > 0)) throw new TypeError(`worker option ${k} must be > 0, got ${c[k]}`);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(c.workerId)) throw new TypeError(`worker option workerId '${c.workerId}' may use letters, digits, '.', '_' and '-' only`);
  return c;
}
