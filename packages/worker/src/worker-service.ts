import IORedis from 'ioredis';
import { hostname } from 'node:os';
import { isStateQuery, redisKeys, WorkerInfo, WorkerJobData, WorkerJobResult, defaultGflops } from '@facenet/protocol';
import {
  runCloseSteps,
  connectRedis,
  logRedisErrors,
  logThrottled,
  serveMetrics,
  DatasetIndexStore,
  InboxItem,
  WorkInbox,
  readAbortMessage,
  workKeyFromEnv,
} from '@facenet/service-kit';
import { AllreducePeer } from './allreduce/ring-allreduce';
import { ComputeClient } from './compute/compute-client';
import { DataClient } from './data/data-client';
import { StepRunner } from './step-runner';
import { checkWorkerJob } from './job-guard';
import { compileWorkerOptions, CompiledWorkerOptions, WorkerOptions } from './worker-options';
import { createWorkerMetrics } from './worker-metrics';

export type WorkerState = 'INITIALIZED' | 'RUNNING' | 'DRAINING' | 'STOPPED';

/**
 * A training worker process: registers in Redis and heartbeats, serves its allreduce endpoint,
 * and takes shard jobs and state queries from its own inbox one at a time (work-inbox.ts). An
 * item is never re-run: a step runs exactly once or is aborted and re-planned.
 */
export class WorkerService {
  readonly options: CompiledWorkerOptions;
  state: WorkerState = 'INITIALIZED';
  private readonly redis: IORedis;
  private readonly peer: AllreducePeer;
  private readonly compute = new ComputeClient();
  private readonly data: DataClient;
  private readonly runner: StepRunner;
  private inbox: WorkInbox | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private info: WorkerInfo | undefined;
  private subscriber: IORedis | undefined;
  readonly metrics = createWorkerMetrics();
  /** FACENET_WORK_KEY: with it, only items the coordinator signed with the same key run (read once, at construction: a bad key stops the start). */
  private readonly workKey = workKeyFromEnv();
  private metricsServer: { address: string; close: () => Promise<void> } | undefined;

  constructor(
    options: WorkerOptions = {},
    private readonly log: (line: string) => void = (l) => console.error(l),
  ) {
    this.options = compileWorkerOptions(options);
    this.redis = new IORedis(this.options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
    logRedisErrors(this.redis, (l) => this.log(`[worker ${this.id}] ${l}`));
    this.peer = new AllreducePeer(this.options.allreduce);
    const indexes = new DatasetIndexStore(this.redis, this.options.prefix);
    this.data = new DataClient(
      (id) => indexes.get(id),
      (c) => {
        this.metrics.cacheHits.inc(c.hits);
        this.metrics.cacheMisses.inc(c.misses);
        this.metrics.fetchedBytes.inc(c.bytesFetched);
        for (const s of c.fetchSeconds) this.metrics.fetchSeconds.observe(s);
      },
    );
    this.runner = new StepRunner(
      this.compute,
      this.peer,
      { nonFiniteAtStep: this.options.faultNonFiniteAtStep, exitAfterApplyAtStep: this.options.faultExitAfterApplyAtStep },
      { prefetch: this.options.prefetch, loader: this.data },
    );
    if (this.options.faultNonFiniteAtStep !== undefined)
      this.log(`[worker ${this.id}] FAULT INJECTION: NaN gradients at step ${this.options.faultNonFiniteAtStep + 1} of every job`);
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
    await connectRedis(this.redis, this.options.redisUrl);
    const { name: backend, adapter } = await this.compute.backend();
    const gpuName = adapter ? adapter.description || adapter.device : '';
    const address = await this.peer.start();
    this.metricsServer = await serveMetrics({
      host: this.options.metricsHost,
      port: this.options.metricsPort,
      metrics: () => this.metrics.registry.metrics(),
      contentType: this.metrics.registry.contentType,
      // Ready once registered and reading its inbox; 503 while draining, so no new job lands here.
      health: () => ({ ok: this.state === 'RUNNING', state: this.state }),
    });
    this.metrics.info.set({ worker_id: this.id, backend, gpu: gpuName }, 1);
    if (adapter) this.metrics.gpuMaxBufferBytes.set(adapter.maxBufferSize);
    this.info = {
      id: this.id,
      address,
      host: hostname(),
      pid: process.pid,
      backend,
      startedAt: new Date().toISOString(),
      metrics: this.metricsServer.address,
      budget: {
        memoryBytes: this.options.memoryBudgetBytes,
        gflops: this.options.gflops ?? defaultGflops(backend),
        ...(adapter && { maxBufferBytes: Math.min(adapter.maxBufferSize, adapter.maxStorageBufferBindingSize) }),
      },
      ...(adapter && {
        gpu: {
          vendor: adapter.vendor,
          architecture: adapter.architecture,
          description: gpuName,
          software: adapter.software,
          maxBufferSize: adapter.maxBufferSize,
          maxStorageBufferBindingSize: adapter.maxStorageBufferBindingSize,
        },
      }),
    };
    await this.register();
    this.heartbeat = setInterval(() => {
      this.register().catch((err: Error) => logThrottled(this.log, `[worker ${this.id}] heartbeat failed: ${err.message}`));
    }, this.options.heartbeatMs);
    const keys = redisKeys(this.options.prefix);
    this.inbox = new WorkInbox(
      this.redis,
      { inbox: keys.workerInbox(this.id), results: keys.workResults },
      this.id,
      (item) => this.process(item),
      (l) => this.log(`[worker ${this.id}] ${l}`),
      this.workKey ? { key: this.workKey, onRefused: (reason) => this.metrics.refusedItems.inc({ reason }) } : undefined,
    );
    await this.inbox.start();
    // The coordinator announces abandoned generations so a rank stuck waiting on a dead
    // neighbour aborts its step at once instead of after the allreduce timeout.
    this.subscriber = this.redis.duplicate();
    logRedisErrors(this.subscriber, (l) => this.log(`[worker ${this.id}] subscriber ${l}`));
    await this.subscriber.subscribe(keys.abortChannel);
    this.subscriber.on('message', (channel: string, text: string) => {
      const read = readAbortMessage(this.workKey, channel, text);
      if ('refused' in read) {
        // Anything published on the channel arrives here: a refused message is logged and counted,
        // never thrown (a throw in this listener would end the process).
        this.log(`[worker ${this.id}] ${read.detail}; ignored`);
        this.metrics.refusedItems.inc({ reason: `abort ${read.refused}` });
        return;
      }
      const m = read.message;
      this.peer.abandonGeneration(m.jobId, m.generation);
      if (m.interrupt) void this.interrupt(m.jobId);
    });
    this.state = 'RUNNING';
    this.log(
      `[worker ${this.id}] ready: backend ${backend}${adapter ? ` on ${gpuName}` : ''}, allreduce at ${address}${this.options.allreduce.tls ? ' (mutual TLS)' : ''}, inbox ${keys.workerInbox(this.id)}, metrics at http://${this.metricsServer.address}/metrics`,
    );
  }

  /** The job was cancelled: stop its step in flight, or drop its data if none is running. */
  private async interrupt(jobId: string): Promise<void> {
    try {
      if (await this.runner.interrupt(jobId, 'the job was cancelled'))
        this.log(`[worker ${this.id}] job ${jobId}: cancelled, step in flight stopped`);
      else await this.runner.release(jobId);
    } catch (err) {
      this.log(`[worker ${this.id}] job ${jobId}: interrupt failed: ${(err as Error).message}`);
    }
  }

  /** Runs one inbox item; a throw is answered as the item's failure (its class travels in the envelope). */
  private async process(item: InboxItem): Promise<WorkerJobResult> {
    const d = item.data as WorkerJobData;
    try {
      checkWorkerJob(d, { dataRoots: this.options.dataRoots, checkpointRoot: this.options.checkpointRoot, budget: this.info?.budget });
    } catch (err) {
      this.log(`[worker ${this.id}] ${(err as Error).message}`);
      throw err;
    }
    if (isStateQuery(d)) {
      const held = await this.runner.state(d).catch((err: Error) => {
        this.log(`[worker ${this.id}] job ${d.jobId}: state query failed: ${err.message}`);
        throw err;
      });
      this.log(
        `[worker ${this.id}] job ${d.jobId}: holds ${held ? `step ${held.step} (${held.checksum.slice(0, 12)})${held.checkpoint ? `, written to ${held.checkpoint}` : ''}` : 'nothing'}`,
      );
      return held;
    }
    const l = { job_id: d.jobId };
    this.peer.expectGeneration(d.jobId, d.generation, d.rank, d.ring.size, d.collectiveSecret);
    try {
      const r = await this.runner.run(d);
      this.observe(d.jobId, r);
      const t = r.timings;
      const outcome = r.nonFinite
        ? `NOT APPLIED: ${r.nonFinite}`
        : `loss ${r.stats.loss.toFixed(4)}${r.stats.classificationLoss ? ` (classification ${r.stats.classificationLoss.toFixed(3)}, ${(100 * r.stats.classificationAccuracy).toFixed(0)}% right)` : ''} data ${t.dataMs.toFixed(0)} ms, compute ${t.computeMs.toFixed(0)} ms, allreduce ${t.allreduceMs.toFixed(0)} ms (${r.allreduceAlgorithm}, ${(r.allreduceBytes / 1024).toFixed(0)} KB sent), update ${t.optimizerMs.toFixed(0)} ms${r.checkpoint ? `, checkpoint ${r.checkpoint}` : ''}`;
      this.log(`[worker ${this.id}] job ${d.jobId} step ${d.step + 1} rank ${d.rank}/${d.ring.size}: ${outcome}`);
      return r;
    } catch (err) {
      this.metrics.steps.inc({ ...l, outcome: 'failed' });
      this.log(`[worker ${this.id}] job ${d.jobId} step ${d.step + 1} rank ${d.rank} failed: ${(err as Error).message}`);
      // The coordinator re-plans failed steps itself (nothing is retried); the failure's envelope
      // tells it the error's class, fields and whether another try can help.
      throw err;
    }
  }

  private observe(jobId: string, r: Awaited<ReturnType<StepRunner['run']>>): void {
    const m = this.metrics;
    const l = { job_id: jobId };
    for (const [phase, ms] of Object.entries(r.timings)) m.phase.observe({ ...l, phase: phase.replace(/Ms$/, '') }, ms / 1000);
    m.steps.inc({ ...l, outcome: r.nonFinite ? 'non_finite' : 'applied' });
    const a = { ...l, algorithm: r.allreduceAlgorithm ?? 'ring' };
    m.allreduceBytes.inc(a, r.allreduceBytes);
    m.allreduceSeconds.inc(a, r.timings.allreduceMs / 1000);
    m.step.set(l, r.step + 1);
    // Between steps the thread is idle, so asking costs nothing; a scrape never waits on a step.
    void this.compute.tensors().then(
      (n) => m.tensors.set(n),
      () => undefined,
    );
  }

  /**
   * Waits until the coordinator lets this draining worker go: it has taken it out of its job's
   * world at a step boundary (or it was in none). Bounded by the shutdown grace, so a worker
   * whose coordinator is gone still stops.
   */
  private async awaitRelease(): Promise<void> {
    const keys = redisKeys(this.options.prefix);
    const end = Date.now() + this.options.shutdownGraceMs;
    while (Date.now() < end) {
      const [released, coordinator] = await Promise.all([
        this.redis.exists(keys.workerReleased(this.id)),
        this.redis.exists(keys.coordinatorLock),
      ]);
      if (released) return;
      // No coordinator holds the lock (it exited, or died and its lock expired): nobody will
      // release this worker, and no step can be sent to it; waiting out the grace only delays a stop.
      if (!coordinator) {
        this.log(`[worker ${this.id}] no coordinator holds ${keys.coordinatorLock}; leaving without release`);
        return;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    this.log(`[worker ${this.id}] not released by the coordinator within ${this.options.shutdownGraceMs} ms; leaving anyway`);
  }

  /**
   * Drains: announces it in its registration, keeps serving steps until the coordinator has moved
   * its job on without it (at a step boundary, with no fault), then leaves the ring and
   * deregisters. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.state = 'DRAINING';
    const keys = redisKeys(this.options.prefix);
    const steps: [string, () => Promise<unknown>][] = [
      [
        'announce draining',
        async () => {
          if (!this.info) return;
          this.info.draining = true;
          await this.register();
        },
      ],
      ['wait for release', () => (this.info ? this.awaitRelease() : Promise.resolve())],
      ['stop heartbeat', async () => clearInterval(this.heartbeat)],
      ['deregister', () => this.redis.multi().del(keys.worker(this.id), keys.workerReleased(this.id)).srem(keys.workers, this.id).exec()],
      [
        'close inbox',
        async () => {
          await this.inbox?.close(this.options.shutdownGraceMs);
          // Released and deregistered: nothing more is sent here (a lost worker's inbox the coordinator removes).
          await this.redis.del(keys.workerInbox(this.id));
        },
      ],
      ['close allreduce server', () => this.peer.close()],
      ['close metrics server', async () => this.metricsServer?.close()],
      ['stop compute thread', () => this.compute.close()],
      ['stop data thread', () => this.data.close()],
      ['close subscriber', async () => this.subscriber?.disconnect()],
      ['close redis', () => this.redis.quit()],
    ];
    await runCloseSteps(steps, (l) => this.log(`[worker ${this.id}] ${l}`));
    this.state = 'STOPPED';
  }
}
