import { Job, Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { existsSync } from 'node:fs';
import { CheckpointEvent, JobRecord, connectRedis, logRedisErrors, MiningPlan, redisKeys, runCloseSteps, serveMetrics } from '@facenet/protocol';
import { MiningError } from './errors';
import { createMinerMetrics } from './miner-metrics';
import { CheckpointMiner } from './mine-checkpoint';
import { compileMinerOptions, CompiledMinerOptions, MinerOptions } from './miner-options';

export type MinerState = 'INITIALIZED' | 'RUNNING' | 'DRAINING' | 'STOPPED';


/**
 * The miner process: consumes checkpoint events, mines the newest checkpoint of each job
 * (events for older checkpoints still queued behind a newer one are skipped and named in the
 * plan), and publishes versioned plans to Redis. It is off the training path: the coordinator
 * plans uniformly whenever no plan is there, so a slow, failing or dead miner never blocks a step.
 */
export class MinerService {
  readonly options: CompiledMinerOptions;
  state: MinerState = 'INITIALIZED';
  private readonly redis: IORedis;
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly miner: CheckpointMiner;
  private worker: Worker<CheckpointEvent> | undefined;
  private queue: Queue<CheckpointEvent> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private readonly startedAt = new Date().toISOString();
  readonly metrics = createMinerMetrics();
  private server: { address: string; close: () => Promise<void> } | undefined;

  constructor(options: MinerOptions = {}, private readonly log: (line: string) => void = (l) => console.error(l)) {
    this.options = compileMinerOptions(options);
    this.redis = new IORedis(this.options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
    this.keys = redisKeys(this.options.prefix);
    this.miner = new CheckpointMiner(this.options);
    logRedisErrors(this.redis, (l) => this.log(`[miner] ${l}`));
  }

  private async register(): Promise<void> {
    const info = { id: this.options.id, pid: process.pid, startedAt: this.startedAt, metrics: this.server?.address };
    await this.redis.set(this.keys.miner, JSON.stringify(info), 'PX', this.options.heartbeatMs * 3);
  }

  async start(): Promise<void> {
    await connectRedis(this.redis, this.options.redisUrl);
    this.server = await serveMetrics({
      host: this.options.metricsHost, port: this.options.metricsPort,
      metrics: () => this.metrics.registry.metrics(), contentType: this.metrics.registry.contentType,
      health: () => ({ ok: this.state === 'RUNNING', state: this.state }),
    });
    await this.register();
    this.heartbeat = setInterval(() => void this.register().catch(() => undefined), this.options.heartbeatMs);
    this.queue = new Queue(this.keys.checkpointQueue, { connection: this.redis, prefix: this.keys.bull });
    // Mining blocks this thread for a while on big sets, hence the long lock. An event whose miner
    // died (its lock expired) goes back to the queue once and is mined by the next miner.
    const connection = this.redis.duplicate({ maxRetriesPerRequest: null });
    logRedisErrors(connection, (l) => this.log(`[miner] queue ${l}`));
    this.worker = new Worker<CheckpointEvent>(this.keys.checkpointQueue, (job) => this.process(job), {
      connection, prefix: this.keys.bull, concurrency: 1, lockDuration: this.options.lockMs, maxStalledCount: 1,
    });
    this.worker.on('error', (err) => this.log(`[miner] queue error: ${err.message}`));
    this.state = 'RUNNING';
    this.log(`[miner] ready: consuming ${this.keys.checkpointQueue} (prefix ${this.options.prefix}), metrics at http://${this.server.address}/metrics`);
  }

  private async process(event: Job<CheckpointEvent>): Promise<{ skipped?: boolean; version?: number }> {
    const { jobId, step, dir } = event.data;
    const waiting = (await this.queue?.getWaiting()) ?? [];
    if (waiting.some((w) => w.data.jobId === jobId && w.data.step > step)) {
      await this.redis.rpush(this.keys.skippedCheckpoints(jobId), String(step));
      this.metrics.skipped.inc({ job_id: jobId });
      this.log(`[miner] job ${jobId}: skipped checkpoint ${step} (a newer one is queued)`);
      return { skipped: true };
    }
    if (!existsSync(dir)) return { skipped: true }; // deleted by the job's retention meanwhile
    const raw = await this.redis.get(this.keys.job(jobId));
    if (!raw) return { skipped: true };
    const record = JSON.parse(raw) as JobRecord;
    if (!record.spec.curriculum?.enabled) return { skipped: true };
    const mined = await this.miner.mine({ jobId, spec: record.spec, seed: record.train.seed, margin: record.train.margin }, dir, step).catch((err: Error) => {
      const e = new MiningError(jobId, step, dir, err.message);
      this.log(`[miner] ${e.message}`);
      throw e;
    });
    const skippedSteps = (await this.redis.lrange(this.keys.skippedCheckpoints(jobId), '0', '-1')).map(Number);
    await this.redis.del(this.keys.skippedCheckpoints(jobId));
    const version = await this.redis.incr(this.keys.planVersion(jobId));
    const plan: MiningPlan = { ...mined, version, createdAt: new Date().toISOString(), skippedSteps };
    await this.redis.multi().set(this.keys.plan(jobId, version), JSON.stringify(plan)).zadd(this.keys.plans(jobId), version, String(version)).exec();
    await this.prune(jobId);
    const s = plan.stats;
    const l = { job_id: jobId };
    this.metrics.seconds.observe({ ...l, phase: 'embed' }, plan.timings.embedMs / 1000);
    this.metrics.seconds.observe({ ...l, phase: 'mine' }, plan.timings.mineMs / 1000);
    this.metrics.embeddingsPerSecond.set(l, plan.timings.images / Math.max(1e-3, plan.timings.embedMs / 1000));
    this.metrics.planVersion.set(l, version);
    this.metrics.planStep.set(l, step);
    this.metrics.semiHard.set(l, s.semiHard);
    this.metrics.plans.inc(l);
    this.log(`[miner] job ${jobId}: plan v${version} from step ${step}: ${plan.timings.images} images embedded in ${plan.timings.embedMs.toFixed(0)} ms, mined in ${plan.timings.mineMs.toFixed(0)} ms; ${(100 * s.minedFraction).toFixed(0)}% of ${s.pairs} pairs got a negative; easy ${(100 * s.easy).toFixed(1)}% semi-hard ${(100 * s.semiHard).toFixed(1)}% hard ${(100 * s.hard).toFixed(1)}%`);
    return { version };
  }

  /** Keeps the newest plans; older ones are only needed to replay steps, which the job records. */
  private async prune(jobId: string): Promise<void> {
    const old = await this.redis.zrange(this.keys.plans(jobId), '0', String(-this.options.keepPlans - 1));
    if (old.length === 0) return;
    await this.redis.multi().zrem(this.keys.plans(jobId), ...old).del(...old.map((v) => this.keys.plan(jobId, Number(v)))).exec();
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.state = 'DRAINING';
    const steps: [string, () => Promise<unknown>][] = [
      ['stop heartbeat', async () => clearInterval(this.heartbeat)],
      ['deregister', () => this.redis.del(this.keys.miner)],
      ['close queue worker', async () => this.worker?.close()],
      ['close queue', async () => this.queue?.close()],
      ['close metrics server', async () => this.server?.close()],
      ['close redis', () => this.redis.quit()],
    ];
    await runCloseSteps(steps, (l) => this.log(`[miner] ${l}`));
    this.state = 'STOPPED';
  }
}
