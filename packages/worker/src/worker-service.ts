import { Job, UnrecoverableError, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { hostname } from 'node:os';
import { redisKeys, ShardJobData, ShardJobResult, WorkerInfo, workerQueueName, runCloseSteps } from '@facenet/core';
import { AllreducePeer } from './allreduce/ring-allreduce';
import { ComputeClient } from './compute/compute-client';
import { StepRunner } from './step-runner';
import { StateError } from './errors';
import { compileWorkerOptions, CompiledWorkerOptions, WorkerOptions } from './worker-options';

export type WorkerState = 'INITIALIZED' | 'RUNNING' | 'DRAINING' | 'STOPPED';

/**
 * A training worker process: registers in Redis and heartbeats, serves its allreduce endpoint,
 * and consumes shard jobs from its own queue one at a time. Stalled jobs are failed, never
 * re-run (maxStalledCount 0): a step runs exactly once or is aborted and re-planned.
 */
export class WorkerService {
  readonly options: CompiledWorkerOptions;
  state: WorkerState = 'INITIALIZED';
  private readonly redis: IORedis;
  private readonly peer: AllreducePeer;
  private readonly compute = new ComputeClient();
  private readonly runner: StepRunner;
  private worker: Worker<ShardJobData, ShardJobResult> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private info: WorkerInfo | undefined;
  private subscriber: IORedis | undefined;

  constructor(options: WorkerOptions = {}, private readonly log: (line: string) => void = (l) => console.error(l)) {
    this.options = compileWorkerOptions(options);
    this.redis = new IORedis(this.options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
    this.peer = new AllreducePeer({ host: this.options.host, port: this.options.port, advertiseAddress: this.options.advertiseAddress, chunkBytes: this.options.chunkBytes, timeoutMs: this.options.allreduceTimeoutMs });
    this.runner = new StepRunner(this.compute, this.peer);
  }

  get id(): string {
    return this.options.workerId;
  }

  private async register(): Promise<void> {
    const keys = redisKeys(this.options.prefix);
    const ttl = this.options.heartbeatMs * 3;
    await this.redis.multi().set(keys.worker(this.id), JSON.stringify(this.info), 'PX', ttl).sadd(keys.workers, this.id).exec();
  }

  async start(): Promise<void> {
    if (this.state !== 'INITIALIZED') throw new Error(`worker is ${this.state}`);
    await this.redis.connect();
    const backend = await this.compute.backend();
    const address = await this.peer.start();
    this.info = { id: this.id, address, host: hostname(), pid: process.pid, backend, startedAt: new Date().toISOString() };
    await this.register();
    this.heartbeat = setInterval(() => {
      this.register().catch((err: Error) => this.log(`[worker ${this.id}] heartbeat failed: ${err.message}`));
    }, this.options.heartbeatMs);
    const keys = redisKeys(this.options.prefix);
    this.worker = new Worker<ShardJobData, ShardJobResult>(workerQueueName(this.id), (job) => this.process(job), {
      connection: this.redis.duplicate({ maxRetriesPerRequest: null }),
      prefix: keys.bull,
      concurrency: 1,
      maxStalledCount: 0,
      lockDuration: 30_000,
    });
    this.worker.on('error', (err) => this.log(`[worker ${this.id}] queue error: ${err.message}`));
    // The coordinator announces abandoned generations so a rank stuck waiting on a dead
    // neighbour aborts its step at once instead of after the allreduce timeout.
    this.subscriber = this.redis.duplicate();
    await this.subscriber.subscribe(keys.abortChannel);
    this.subscriber.on('message', (_channel: string, message: string) => {
      const m = JSON.parse(message) as { jobId: string; generation: number };
      this.peer.abandonGeneration(m.jobId, m.generation);
    });
    this.state = 'RUNNING';
    this.log(`[worker ${this.id}] ready: backend ${backend}, allreduce at ${address}, queue ${workerQueueName(this.id)}`);
  }

  private async process(job: Job<ShardJobData, ShardJobResult>): Promise<ShardJobResult> {
    const d = job.data;
    try {
      const r = await this.runner.run(d);
      const t = r.timings;
      this.log(`[worker ${this.id}] job ${d.jobId} step ${d.step + 1} rank ${d.rank}/${d.world.length}: loss ${r.stats.loss.toFixed(4)} data ${t.dataMs.toFixed(0)} ms, compute ${t.computeMs.toFixed(0)} ms, allreduce ${t.allreduceMs.toFixed(0)} ms, update ${t.optimizerMs.toFixed(0)} ms${r.checkpoint ? `, checkpoint ${r.checkpoint}` : ''}`);
      return r;
    } catch (err) {
      this.log(`[worker ${this.id}] job ${d.jobId} step ${d.step + 1} rank ${d.rank} failed: ${(err as Error).message}`);
      // The coordinator re-plans failed steps itself; BullMQ must not retry them.
      if (err instanceof StateError) throw new UnrecoverableError(err.message);
      throw err;
    }
  }

  /** Drains: finishes (or aborts) the current step, leaves the ring and deregisters. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.state = 'DRAINING';
    const keys = redisKeys(this.options.prefix);
    const steps: [string, () => Promise<unknown>][] = [
      ['stop heartbeat', async () => clearInterval(this.heartbeat)],
      ['deregister', () => this.redis.multi().del(keys.worker(this.id)).srem(keys.workers, this.id).exec()],
      ['close queue worker', async () => {
        if (!this.worker) return;
        const forced = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), this.options.shutdownGraceMs).unref());
        if ((await Promise.race([this.worker.close(), forced])) === 'timeout') await this.worker.close(true);
      }],
      ['close allreduce server', () => this.peer.close()],
      ['stop compute thread', () => this.compute.close()],
      ['close subscriber', async () => this.subscriber?.disconnect()],
      ['close redis', () => this.redis.quit()],
    ];
    await runCloseSteps(steps, (l) => this.log(`[worker ${this.id}] ${l}`));
    this.state = 'STOPPED';
  }
}
