import { Job, Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';
import { serveMetrics } from './metrics-server';
import { CheckpointEvent, redisKeys } from '@facenet/protocol';
import { connectRedis, logRedisErrors, runCloseSteps } from './service-runtime';

export type ConsumerState = 'INITIALIZED' | 'RUNNING' | 'DRAINING' | 'STOPPED';

export interface CheckpointConsumerOptions {
  /** 'miner' or 'evaluator': log prefix. */
  role: string;
  redisUrl: string;
  prefix: string;
  id: string;
  /** The BullMQ queue of checkpoint events it consumes, and the Redis key of its registration. */
  queue: string;
  registrationKey: string;
  heartbeatMs: number;
  /** Lock on the event being handled; if the process dies, the event is handled again once after it expires. */
  lockMs: number;
  metricsHost: string;
  metricsPort: number;
  /** A prom-client registry. */
  registry: { metrics(): Promise<string>; contentType: string };
}

/**
 * The process shape the miner and the evaluator share: Redis with a heartbeat registration
 * (which advertises its /metrics address), /metrics and /healthz, and one BullMQ worker taking
 * checkpoint events one at a time with a long lock (handling blocks the thread for a while).
 */
export class CheckpointConsumer {
  state: ConsumerState = 'INITIALIZED';
  readonly redis: IORedis;
  readonly keys: ReturnType<typeof redisKeys>;
  metricsAddress = '';
  private worker: Worker<CheckpointEvent> | undefined;
  private queue: Queue<CheckpointEvent> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private server: { address: string; close: () => Promise<void> } | undefined;
  private closing: Promise<void> | undefined;
  private readonly startedAt = new Date().toISOString();

  constructor(
    private readonly o: CheckpointConsumerOptions,
    private readonly handle: (event: Job<CheckpointEvent>) => Promise<unknown>,
    private readonly log: (line: string) => void,
  ) {
    this.redis = new IORedis(o.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
    this.keys = redisKeys(o.prefix);
    logRedisErrors(this.redis, (l) => this.log(`[${o.role}] ${l}`));
  }

  private async register(): Promise<void> {
    const info = { id: this.o.id, pid: process.pid, startedAt: this.startedAt, metrics: this.metricsAddress };
    await this.redis.set(this.o.registrationKey, JSON.stringify(info), 'PX', this.o.heartbeatMs * 3);
  }

  async start(): Promise<string> {
    await connectRedis(this.redis, this.o.redisUrl);
    this.server = await serveMetrics({
      host: this.o.metricsHost,
      port: this.o.metricsPort,
      metrics: () => this.o.registry.metrics(),
      contentType: this.o.registry.contentType,
      health: () => ({ ok: this.state === 'RUNNING', state: this.state }),
    });
    this.metricsAddress = this.server.address;
    await this.register();
    this.heartbeat = setInterval(() => void this.register().catch(() => undefined), this.o.heartbeatMs);
    this.queue = new Queue(this.o.queue, { connection: this.redis, prefix: this.keys.bull });
    logRedisErrors(this.queue, (l) => this.log(`[${this.o.role}] queue ${l}`));
    const connection = this.redis.duplicate({ maxRetriesPerRequest: null });
    logRedisErrors(connection, (l) => this.log(`[${this.o.role}] queue ${l}`));
    this.worker = new Worker<CheckpointEvent>(this.o.queue, (job) => this.handle(job), {
      connection,
      prefix: this.keys.bull,
      concurrency: 1,
      lockDuration: this.o.lockMs,
      maxStalledCount: 1,
    });
    logRedisErrors(this.worker, (l) => this.log(`[${this.o.role}] queue ${l}`));
    this.state = 'RUNNING';
    this.log(
      `[${this.o.role}] ready: consuming ${this.o.queue} (prefix ${this.o.prefix}), metrics at http://${this.metricsAddress}/metrics`,
    );
    return this.metricsAddress;
  }

  /** True when a newer checkpoint of the same job waits in the queue: handle that one instead. */
  async newerWaiting(event: CheckpointEvent): Promise<boolean> {
    const waiting = (await this.queue?.getWaiting()) ?? [];
    return waiting.some((w) => w.data.jobId === event.jobId && w.data.step > event.step);
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.state = 'DRAINING';
    const steps: [string, () => Promise<unknown>][] = [
      ['stop heartbeat', async () => clearInterval(this.heartbeat)],
      ['deregister', () => this.redis.del(this.o.registrationKey)],
      ['close queue worker', async () => this.worker?.close()],
      ['close queue', async () => this.queue?.close()],
      ['close metrics server', async () => this.server?.close()],
      ['close redis', () => this.redis.quit()],
    ];
    await runCloseSteps(steps, (l) => this.log(`[${this.o.role}] ${l}`));
    this.state = 'STOPPED';
  }
}
