import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { redisKeys, workerQueueName } from '@facenet/protocol';
import { inboxDepth, logRedisErrors } from '@facenet/service-kit';

export interface QueueDepth {
  queue: string;
  state: 'waiting' | 'active' | 'failed';
  count: number;
}

/**
 * Items waiting and taken in each live worker's inbox, and jobs waiting, active and failed in the
 * miner's and the evaluator's BullMQ queues, read when Prometheus scrapes. A worker's inbox is
 * labelled `worker-<id>` as its BullMQ queue was, so dashboards keep their series.
 */
export class QueueDepths {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly redis: IORedis,
    prefix: string,
    private readonly log: (line: string) => void,
  ) {
    this.keys = redisKeys(prefix);
  }

  async read(workerIds: string[]): Promise<QueueDepth[]> {
    const out: QueueDepth[] = [];
    for (const id of workerIds) {
      const d = await inboxDepth(this.redis, this.keys.workerInbox(id));
      out.push(
        { queue: workerQueueName(id), state: 'waiting', count: d.waiting },
        { queue: workerQueueName(id), state: 'active', count: d.active },
      );
    }
    for (const name of [this.keys.checkpointQueue, this.keys.evaluationQueue]) {
      let q = this.queues.get(name);
      if (!q) {
        this.queues.set(name, (q = new Queue(name, { connection: this.redis, prefix: this.keys.bull })));
        logRedisErrors(q, this.log);
      }
      const counts = await q.getJobCounts('waiting', 'active', 'failed');
      for (const state of ['waiting', 'active', 'failed'] as const) out.push({ queue: name, state, count: counts[state] ?? 0 });
    }
    return out;
  }

  async close(): Promise<void> {
    for (const q of this.queues.values()) await q.close().catch(() => undefined);
    this.queues.clear();
  }
}
