import { Job, Queue, QueueEvents } from 'bullmq';
import IORedis from 'ioredis';
import { decodeFailure } from '@facenet/core';
import { redisKeys, workerQueueName, WorkerJobData, WorkerJobResult } from '@facenet/protocol';
import { logRedisErrors } from '@facenet/service-kit';
import { QueueEventsReader, StreamEvents } from './queue-events-reader';

export type WorkerQueue = Queue<WorkerJobData, WorkerJobResult>;
export type WorkerJob = Job<WorkerJobData, WorkerJobResult>;

/**
 * The coordinator's handles on each worker's BullMQ queue (to add jobs) and its events (to wait
 * for them), made on first use and dropped when a worker is gone.
 */
export class WorkerQueues {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly queues = new Map<string, WorkerQueue>();
  private readonly events = new Map<string, StreamEvents>();
  private readonly reader: QueueEventsReader;
  private readonly closing = new AbortController();

  constructor(
    private readonly redis: IORedis,
    prefix: string,
    private readonly log: (line: string) => void,
  ) {
    this.keys = redisKeys(prefix);
    this.reader = new QueueEventsReader(redis, log);
  }

  queue(workerId: string): WorkerQueue {
    let q = this.queues.get(workerId);
    if (!q) {
      q = new Queue(workerQueueName(workerId), { connection: this.redis, prefix: this.keys.bull });
      logRedisErrors(q, this.log);
      this.queues.set(workerId, q);
    }
    return q;
  }

  /**
   * The worker's queue events (one shared reader over every worker's stream), read from the
   * stream's current end. Reading from '$' whenever the first blocking read happens to reach
   * Redis missed a job that finished between `add` and that read (a state query timed out
   * although the worker had answered); starting from the id read here, before any job is added,
   * misses nothing.
   */
  private async queueEvents(workerId: string): Promise<StreamEvents> {
    let e = this.events.get(workerId);
    if (!e) {
      const stream = this.queue(workerId).keys.events as string;
      const [last] = await this.redis.xrevrange(stream, '+', '-', 'COUNT', 1);
      e = this.events.get(workerId) ?? this.reader.add(stream, last?.[0] ?? '0-0');
      this.events.set(workerId, e);
    }
    return e;
  }

  /** Adds one job (never retried: a step runs once or is re-planned), listening for its end first. */
  async add(workerId: string, data: WorkerJobData, jobId: string): Promise<WorkerJob> {
    await this.queueEvents(workerId);
    return this.queue(workerId).add(data.jobId, data, {
      jobId,
      attempts: 1,
      removeOnComplete: { count: 200 },
      removeOnFail: { count: 200 },
    });
  }

  /**
   * The job's return value, or its failure as the worker's own error class (decoded from the
   * failure's envelope, so a StorageError arrives as one); rejects after timeoutMs, or at once when
   * these queues close (BullMQ's own wait would hold a stopping coordinator for the whole step
   * timeout). The timer is ours so that nothing outlives close().
   */
  async result(workerId: string, job: WorkerJob, timeoutMs: number): Promise<WorkerJobResult> {
    // BullMQ's wait: listeners on the events, then one check of whether the job already finished.
    const events = (await this.queueEvents(workerId)) as unknown as QueueEvents;
    const finished = (job.waitUntilFinished(events, 0) as Promise<WorkerJobResult>).catch((err: Error) => {
      throw decodeFailure(err.message);
    });
    let timer: NodeJS.Timeout | undefined;
    let onClose: (() => void) | undefined;
    try {
      return await Promise.race([
        finished,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no result from ${workerId} for ${job.id} after ${timeoutMs} ms`)), timeoutMs);
          onClose = () => reject(new Error(`stopped waiting for ${workerId}: the coordinator is stopping`));
          this.closing.signal.addEventListener('abort', onClose, { once: true });
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (onClose) this.closing.signal.removeEventListener('abort', onClose);
      finished.catch(() => undefined);
    }
  }

  /** A dead worker's queue will never be served: drop it and its pending jobs. */
  async forget(workerId: string): Promise<void> {
    const q = this.queue(workerId);
    await q.obliterate({ force: true }).catch(() => undefined);
    await q.close();
    this.queues.delete(workerId);
    this.reader.remove(q.keys.events as string);
    this.events.delete(workerId);
  }

  async close(): Promise<void> {
    this.closing.abort();
    for (const q of this.queues.values()) await q.close().catch(() => undefined);
    await this.reader.close();
    this.queues.clear();
    this.events.clear();
  }
}
