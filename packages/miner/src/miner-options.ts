import { hostname } from 'node:os';
import { ConfigError } from '@facenet/core';

export interface MinerOptions {
  /** @default process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' */
  redisUrl?: string;
  /** @default 'facenet' */
  prefix?: string;
  /** Tile of the blocked distance computation (memory: ~3 x rows x cols x 4 bytes). @default 1024 x 4096 */
  rowBlock?: number;
  colBlock?: number;
  /** Candidates kept per anchor while scanning. @default 16 */
  candidatesPerAnchor?: number;
  /** Up to this many embeddings the miner scans every pair exactly; beyond, it searches each anchor's
   * negatives among the `neighbourIdentities` nearest identities (by centroid) plus `randomCandidates`. @default 20000 */
  exactUpTo?: number;
  /** @default 24 */
  neighbourIdentities?: number;
  /** @default 32 */
  randomCandidates?: number;
  /** Triplets kept in a plan's inspection sample. @default 200 */
  sampleTriplets?: number;
  /** Plans kept per job (older ones are deleted). @default 20 */
  keepPlans?: number;
  /** @default 2000 */
  heartbeatMs?: number;
  /** Interface and port of /metrics and /healthz (0: any free port, advertised in the registration). @default '127.0.0.1', 0 */
  metricsHost?: string;
  metricsPort?: number;
  /** Lock on the checkpoint event being mined; if the miner dies, the event is mined again after it expires. @default 600000 */
  lockMs?: number;
}

export type CompiledMinerOptions = Required<MinerOptions> & { id: string };

export function compileMinerOptions(o: MinerOptions = {}): CompiledMinerOptions {
  const c = {
    redisUrl: o.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    prefix: o.prefix ?? 'facenet',
    rowBlock: o.rowBlock ?? 1024,
    colBlock: o.colBlock ?? 4096,
    candidatesPerAnchor: o.candidatesPerAnchor ?? 16,
    sampleTriplets: o.sampleTriplets ?? 200,
    exactUpTo: o.exactUpTo ?? 20_000,
    neighbourIdentities: o.neighbourIdentities ?? 24,
    randomCandidates: o.randomCandidates ?? 32,
    keepPlans: o.keepPlans ?? 20,
    heartbeatMs: o.heartbeatMs ?? 2000,
    lockMs: o.lockMs ?? 600_000,
    metricsHost: o.metricsHost ?? '127.0.0.1',
    metricsPort: o.metricsPort ?? 0,
    id: `${hostname()}-${process.pid}`,
  };
  if (!(Number.isInteger(c.randomCandidates) && c.randomCandidates >= 0))
    throw new ConfigError(`miner option randomCandidates`, `must be an integer >= 0, got ${c.randomCandidates}`);
  for (const k of [
    'rowBlock',
    'colBlock',
    'candidatesPerAnchor',
    'sampleTriplets',
    'keepPlans',
    'heartbeatMs',
    'lockMs',
    'exactUpTo',
    'neighbourIdentities',
  ] as const) {
    if (!(Number.isInteger(c[k]) && c[k] > 0)) throw new ConfigError(`miner option ${k}`, `must be a positive integer, got ${c[k]}`);
  }
  if (!(Number.isInteger(c.metricsPort) && c.metricsPort >= 0 && c.metricsPort <= 65535))
    throw new ConfigError(`miner option metricsPort`, `must be 0-65535, got ${c.metricsPort}`);
  return c;
}
