import { Job, Queue, QueueEvents } from 'bullmq';
import IORedis from 'ioredis';
import { redisKeys, workerQueueName, WorkerJobData, WorkerJobResult } from '@facenet/protocol';

export type WorkerQueue = Queue<WorkerJobData, WorkerJobResult>;
export type WorkerJob = Job<WorkerJobData, WorkerJobResult>;

/**
 * The coordinator's handles on each worker's BullMQ queue (to add jobs) and its events (to wait
 * for them), made on first use and dropped when a worker is gone.
 */
export class WorkerQueues {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly queues = new Map<string, WorkerQueue>();
  private readonly events = new Map<string, QueueEvents>();

  constructor(private readonly redis: IORedis, prefix: string) {
    this.keys = redisKeys(prefix);
  }

  queue(workerId: string): WorkerQueue {
    let q = this.queues.get(workerId);
    if (!q) {
      q = new Queue(workerQueueName(workerId), { connection: this.redis, prefix: this.keys.bull });
      this.queues.set(workerId, q);
    }
    return q;
  }

  private async queueEvents(workerId: string): Promise<QueueEvents> {
    let e = this.events.get(workerId);
    if (!e) {
      e = new QueueEvents(workerQueueName(workerId), { connection: this.redis.duplicate({ maxRetriesPerRequest: null }), prefix: this.keys.bull });
      this.events.set(workerId, e);
      await e.waitUntilReady();
    }
    return e;
  }

  /** Adds one job (never retried: a step runs once or is re-planned). */
  add(workerId: string, data: WorkerJobData, jobId: string): Promise<WorkerJob> {
    return this.queue(workerId).add(data.jobId, data, { jobId, attempts: 1, removeOnComplete: { count: 200 }, removeOnFail: { count: 200 } });
  }

  /** The job's return value, or its failure as an Error. */
  async result(workerId: string, job: WorkerJob, timeoutMs: number): Promise<WorkerJobResult> {
    return (await job.waitUntilFinished(await this.queueEvents(workerId), timeoutMs)) as WorkerJobResult;
  }

  /** A dead worker's queue will never be served: drop it and its pending jobs. */
  async forget(workerId: string): Promise<void> {
    const q = this.queue(workerId);
    await q.obliterate({ force: true }).catch(() => undefined);
    await q.close();
    this.queues.delete(workerId);
    await this.events.get(workerId)?.close();
    this.events.delete(workerId);
  }

  async close(): Promise<void> {
    for (const q of this.queues.values()) await q.close().catch(() => undefined);
    for (const e of this.events.values()) await e.close().catch(() => undefined);
    this.queues.clear();
    this.events.clear();
  }
}
