import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError } from '@facenet/core';

export interface EvaluatorOptions {
  /** @default process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' */
  redisUrl?: string;
  /** @default 'facenet' */
  prefix?: string;
  /** Interface and port of /metrics and /healthz (0: any free port, advertised in the registration). @default '127.0.0.1', 0 */
  metricsHost?: string;
  metricsPort?: number;
  /** @default 2000 */
  heartbeatMs?: number;
  /** Lock on the checkpoint being evaluated; if the evaluator dies, it is evaluated again after it expires. @default 600000 */
  lockMs?: number;
  /** Folder for each evaluated checkpoint's HTML report (<jobId>/step-NNNNNN.html); '' = none. @default '' */
  reportRoot?: string;
}

export type CompiledEvaluatorOptions = Required<EvaluatorOptions> & { id: string };

export function compileEvaluatorOptions(o: EvaluatorOptions = {}): CompiledEvaluatorOptions {
  const c = {
    redisUrl: o.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    prefix: o.prefix ?? 'facenet',
    metricsHost: o.metricsHost ?? '127.0.0.1',
    metricsPort: o.metricsPort ?? 0,
    heartbeatMs: o.heartbeatMs ?? 2000,
    lockMs: o.lockMs ?? 600_000,
    reportRoot: o.reportRoot ? resolve(o.reportRoot) : '',
    id: `${hostname()}-${process.pid}`,
  };
  if (!(Number.isInteger(c.metricsPort) && c.metricsPort >= 0 && c.metricsPort <= 65535))
    throw new ConfigError(`evaluator option metricsPort`, `must be 0-65535, got ${c.metricsPort}`);
  for (const k of ['heartbeatMs', 'lockMs'] as const) {
    if (!(Number.isInteger(c[k]) && c[k] > 0)) throw new ConfigError(`evaluator option ${k}`, `must be a positive integer, got ${c[k]}`);
  }
  return c;
}
