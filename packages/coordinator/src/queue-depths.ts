import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { redisKeys, workerQueueName } from '@facenet/protocol';
import { logRedisErrors } from '@facenet/service-kit';

export interface QueueDepth {
  queue: string;
  state: 'waiting' | 'active' | 'failed';
  count: number;
}

/**
 * Jobs waiting, active and failed in each BullMQ queue of the cluster (every live worker's,
 * the miner's and the evaluator's), read when Prometheus scrapes.
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
    const names = [...workerIds.map(workerQueueName), this.keys.checkpointQueue, this.keys.evaluationQueue];
    for (const [name, q] of this.queues) {
      if (!names.includes(name)) {
        this.queues.delete(name);
        await q.close().catch(() => undefined);
      }
    }
    const out: QueueDepth[] = [];
    for (const name of names) {
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
