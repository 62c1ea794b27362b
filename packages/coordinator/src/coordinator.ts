import Fastify, { FastifyInstance } from 'fastify';
import IORedis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { MiningPlan, redisKeys, summarizePlan, runCloseSteps } from '@facenet/core';
import { registerRoutes } from './api/routes';
import { compileCoordinatorOptions, CompiledCoordinatorOptions, CoordinatorOptions } from './coordinator-options';
import { CoordinatorError } from './errors';
import { JobDriver } from './job-driver';
import { JobStore } from './job-store';
import { Membership } from './membership';
import { createMetrics } from './metrics';

export type CoordinatorState = 'INITIALIZED' | 'RUNNING' | 'DRAINING' | 'STOPPED';

/** Redis must not evict: an evicted BullMQ key is a lost step. */
export async function checkEvictionPolicy(redis: IORedis): Promise<string> {
  const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
  return reply[1] ?? 'unknown';
}

/**
 * The coordinator process: REST API, scheduler and job driver. Holds a lock in Redis so only
 * one coordinator drives jobs; a restarted one picks running jobs up where the record says.
 */
export class Coordinator {
  readonly options: CompiledCoordinatorOptions;
  state: CoordinatorState = 'INITIALIZED';
  readonly redis: IORedis;
  readonly store: JobStore;
  readonly membership: Membership;
  private readonly metrics = createMetrics();
  private readonly driver: JobDriver;
  private readonly app: FastifyInstance;
  private readonly lockToken = randomBytes(8).toString('hex');
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private closing: Promise<void> | undefined;
  url = '';

  constructor(options: CoordinatorOptions = {}, private readonly log: (line: string) => void = (l) => console.error(l)) {
    this.options = compileCoordinatorOptions(options);
    this.redis = new IORedis(this.options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
    this.store = new JobStore(this.redis, this.options.prefix);
    this.membership = new Membership(this.redis, this.options.prefix);
    this.driver = new JobDriver(this.redis, this.store, this.membership, this.metrics, {
      prefix: this.options.prefix, checkpointRoot: this.options.checkpointRoot, stepTimeoutMs: this.options.stepTimeoutMs,
      maxFaultsPerStep: this.options.maxFaultsPerStep, faultSettleMs: this.options.faultSettleMs, log,
    });
    this.app = Fastify({ logger: false, bodyLimit: 1 << 20 });
    registerRoutes(this.app, {
      store: this.store, membership: this.membership,
      metrics: () => this.metrics.registry.metrics(), metricsContentType: this.metrics.registry.contentType,
      redisPing: () => this.redis.ping(),
      newestPlan: async (jobId) => {
        const keys = redisKeys(this.options.prefix);
        const [v] = await this.redis.zrevrange(keys.plans(jobId), '0', '0');
        const raw = v === undefined ? null : await this.redis.get(keys.plan(jobId, Number(v)));
        return raw ? summarizePlan(JSON.parse(raw) as MiningPlan) : null;
      },
      miner: async () => {
        const raw = await this.redis.get(redisKeys(this.options.prefix).miner);
        return raw ? (JSON.parse(raw) as unknown) : null;
      },
    });
  }

  async start(): Promise<string> {
    await this.redis.connect();
    const policy = await checkEvictionPolicy(this.redis);
    if (policy !== 'noeviction') {
      const msg = `Redis maxmemory-policy is '${policy}': BullMQ needs 'noeviction' or it can silently lose queued steps (CONFIG SET maxmemory-policy noeviction)`;
      if (this.options.requireNoeviction) throw new CoordinatorError(msg);
      this.log(`[coordinator] WARNING: ${msg}`);
    }
    const lockKey = redisKeys(this.options.prefix).coordinatorLock;
    const got = await this.redis.set(lockKey, this.lockToken, 'PX', 15_000, 'NX');
    if (!got) throw new CoordinatorError(`another coordinator holds ${lockKey} (it expires 15 s after that coordinator stops)`);
    this.url = await this.app.listen({ host: this.options.host, port: this.options.port });
    this.timer = setInterval(() => void this.tick(), this.options.tickMs);
    this.state = 'RUNNING';
    this.log(`[coordinator] ready: API at ${this.url}/v1, Redis ${this.options.redisUrl} (prefix ${this.options.prefix}), checkpoints in ${this.options.checkpointRoot}`);
    return this.url;
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.state !== 'RUNNING') return;
    this.ticking = true;
    try {
      await this.redis.pexpire(redisKeys(this.options.prefix).coordinatorLock, 15_000);
      await this.driver.tick();
    } catch (err) {
      this.log(`[coordinator] scheduler: ${(err as Error).message}`);
    } finally {
      this.ticking = false;
    }
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.state = 'DRAINING';
    const lockKey = redisKeys(this.options.prefix).coordinatorLock;
    const steps: [string, () => Promise<unknown>][] = [
      ['stop scheduler', async () => clearInterval(this.timer)],
      ['close API', () => this.app.close()],
      ['stop driver', () => this.driver.close()],
      ['release lock', async () => {
        if ((await this.redis.get(lockKey)) === this.lockToken) await this.redis.del(lockKey);
      }],
      ['close redis', () => this.redis.quit()],
    ];
    await runCloseSteps(steps, (l) => this.log(`[coordinator] ${l}`));
    this.state = 'STOPPED';
  }
}
