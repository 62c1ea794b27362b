import IORedis from 'ioredis';
import { redisKeys, WorkerBudget, WorkerInfo } from '@facenet/protocol';

/**
 * Who is alive: workers register a key that expires unless their heartbeat refreshes it.
 * A worker whose key expired is dead; it is dropped from the set on the next look.
 */
export class Membership {
  private readonly keys: ReturnType<typeof redisKeys>;

  constructor(
    private readonly redis: IORedis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  async alive(): Promise<WorkerInfo[]> {
    const ids = (await this.redis.smembers(this.keys.workers)).sort();
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.keys.worker(id)));
    const dead = ids.filter((_, i) => !raws[i]);
    if (dead.length) await this.redis.srem(this.keys.workers, ...dead);
    return raws.flatMap((r) => (r ? [JSON.parse(r) as WorkerInfo] : []));
  }

  async isAlive(ids: string[]): Promise<boolean> {
    if (ids.length === 0) return true;
    const n = await this.redis.exists(...ids.map((id) => this.keys.worker(id)));
    return n === ids.length;
  }
}

/** The largest budget among registered workers (memory and speed each at their largest), if any advertises one. */
export function largestBudget(workers: WorkerInfo[]): WorkerBudget | undefined {
  const budgets = workers.flatMap((w) => (w.budget ? [w.budget] : []));
  if (!budgets.length) return undefined;
  return { memoryBytes: Math.max(...budgets.map((b) => b.memoryBytes)), gflops: Math.max(...budgets.map((b) => b.gflops)) };
}
