import { Job } from 'bullmq';
import IORedis from 'ioredis';
import { existsSync } from 'node:fs';
import { CheckpointEvent, MiningPlan, redisKeys, jobRecordSchema, parseStored } from '@facenet/protocol';
import { CheckpointConsumer, ConsumerState, DatasetIndexStore } from '@facenet/service-kit';
import { MiningError } from './errors';
import { createMinerMetrics } from './miner-metrics';
import { MiningClient } from './mining-client';
import { compileMinerOptions, CompiledMinerOptions, MinerOptions } from './miner-options';

export type MinerState = ConsumerState;

/**
 * The miner process: consumes checkpoint events, mines the newest checkpoint of each job
 * (events for older checkpoints still queued behind a newer one are skipped and named in the
 * plan), and publishes versioned plans to Redis. It is off the training path: the coordinator
 * plans uniformly whenever no plan is there, so a slow, failing or dead miner never blocks a step.
 */
export class MinerService {
  readonly options: CompiledMinerOptions;
  readonly metrics = createMinerMetrics();
  private readonly consumer: CheckpointConsumer;
  private readonly redis: IORedis;
  private readonly keys: ReturnType<typeof redisKeys>;
  /** Embedding and mining run in a worker thread: the main thread keeps heartbeats and the lock. */
  private readonly miner: MiningClient;

  constructor(
    options: MinerOptions = {},
    private readonly log: (line: string) => void = (l) => console.error(l),
  ) {
    this.options = compileMinerOptions(options);
    const o = this.options;
    // The lock covers a whole mining pass (lockMs): if the miner dies, the event is mined again after it expires.
    this.consumer = new CheckpointConsumer(
      {
        role: 'miner',
        redisUrl: o.redisUrl,
        prefix: o.prefix,
        id: o.id,
        queue: redisKeys(o.prefix).checkpointQueue,
        registrationKey: redisKeys(o.prefix).miner,
        heartbeatMs: o.heartbeatMs,
        lockMs: o.lockMs,
        metricsHost: o.metricsHost,
        metricsPort: o.metricsPort,
        registry: this.metrics.registry,
      },
      (job) => this.process(job),
      log,
    );
    this.redis = this.consumer.redis;
    this.keys = this.consumer.keys;
    const indexes = new DatasetIndexStore(this.redis, this.options.prefix);
    this.miner = new MiningClient(this.options, (id) => indexes.get(id));
  }

  get state(): MinerState {
    return this.consumer.state;
  }

  start(): Promise<string> {
    return this.consumer.start();
  }

  async close(): Promise<void> {
    await this.consumer.close();
    await this.miner.close();
  }

  private async process(event: Job<CheckpointEvent>): Promise<{ skipped?: boolean; version?: number }> {
    const { jobId, step, dir } = event.data;
    if (await this.consumer.newerWaiting(event.data)) {
      await this.redis.rpush(this.keys.skippedCheckpoints(jobId), String(step));
      this.metrics.skipped.inc({ job_id: jobId });
      this.log(`[miner] job ${jobId}: skipped checkpoint ${step} (a newer one is queued)`);
      return { skipped: true };
    }
    if (!existsSync(dir)) return { skipped: true }; // deleted by the job's retention meanwhile
    const raw = await this.redis.get(this.keys.job(jobId));
    if (!raw) return { skipped: true };
    const record = parseStored(jobRecordSchema, raw, `job ${jobId}`);
    if (!record.spec.curriculum?.enabled) return { skipped: true };
    const mined = await this.miner
      .mine({ jobId, spec: record.spec, dataIndex: record.dataIndex?.id, seed: record.train.seed, margin: record.train.margin }, dir, step)
      .catch((err: Error) => {
        const e = new MiningError(jobId, step, dir, err.message);
        this.log(`[miner] ${e.message}`);
        throw e;
      });
    const skippedSteps = (await this.redis.lrange(this.keys.skippedCheckpoints(jobId), '0', '-1')).map(Number);
    await this.redis.del(this.keys.skippedCheckpoints(jobId));
    const version = await this.redis.incr(this.keys.planVersion(jobId));
    const plan: MiningPlan = { ...mined, version, createdAt: new Date().toISOString(), skippedSteps };
    await this.redis
      .multi()
      .set(this.keys.plan(jobId, version), JSON.stringify(plan))
      .zadd(this.keys.plans(jobId), version, String(version))
      .exec();
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
    this.log(
      `[miner] job ${jobId}: plan v${version} from step ${step}: ${plan.timings.images} images embedded in ${plan.timings.embedMs.toFixed(0)} ms, mined in ${plan.timings.mineMs.toFixed(0)} ms; ${(100 * s.minedFraction).toFixed(0)}% of ${s.pairs} pairs got a negative; easy ${(100 * s.easy).toFixed(1)}% semi-hard ${(100 * s.semiHard).toFixed(1)}% hard ${(100 * s.hard).toFixed(1)}%`,
    );
    return { version };
  }

  /** Keeps the newest plans; older ones are only needed to replay steps, which the job records. */
  private async prune(jobId: string): Promise<void> {
    const old = await this.redis.zrange(this.keys.plans(jobId), '0', String(-this.options.keepPlans - 1));
    if (old.length === 0) return;
    await this.redis
      .multi()
      .zrem(this.keys.plans(jobId), ...old)
      .del(...old.map((v) => this.keys.plan(jobId, Number(v))))
      .exec();
  }
}
