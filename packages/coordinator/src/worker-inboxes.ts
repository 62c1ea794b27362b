import IORedis from 'ioredis';
import { redisKeys, WorkerJobData, WorkerJobResult } from '@facenet/protocol';
import { WorkDispatch, workKeyFromEnv } from '@facenet/service-kit';

/** An item sent to a worker: what `result` waits for. */
export interface SentItem {
  workerId: string;
  id: string;
}

/**
 * The coordinator's way to hand work to workers: each worker's inbox stream (work-inbox.ts), one
 * shared reader of every answer. Items are never retried: a step runs once or is re-planned.
 */
export class WorkerInboxes {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly dispatch: WorkDispatch;

  constructor(
    private readonly redis: IORedis,
    prefix: string,
    log: (line: string) => void,
  ) {
    this.keys = redisKeys(prefix);
    // Items are signed when FACENET_WORK_KEY is set: workers holding the key run nothing else.
    this.dispatch = new WorkDispatch(redis, this.keys.workResults, log, workKeyFromEnv());
  }

  /** Sends one item (a shard job or a state query) to the worker's inbox, listening for its answer first. */
  async add(workerId: string, data: WorkerJobData, id: string): Promise<SentItem> {
    await this.dispatch.send(this.keys.workerInbox(workerId), id, data);
    return { workerId, id };
  }

  /**
   * The item's return value, or its failure as the worker's own error class (a StorageError arrives
   * as one); rejects after timeoutMs, or at once when the coordinator stops.
   */
  async result(item: SentItem, timeoutMs: number): Promise<WorkerJobResult> {
    return (await this.dispatch.answer(item.id, timeoutMs, () => `${item.workerId} for ${item.id}`)) as WorkerJobResult;
  }

  /** A dead worker's inbox will never be served: drop it and what waits in it. */
  async forget(workerId: string): Promise<void> {
    await this.redis.del(this.keys.workerInbox(workerId));
  }

  async close(): Promise<void> {
    await this.dispatch.close();
  }
}
