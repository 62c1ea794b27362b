import IORedis from 'ioredis';
import { redisKeys, WorkerBudget, WorkerInfo, parseStoredList, workerInfoSchema } from '@facenet/protocol';

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

  /** The last registration seen of each worker, and when: where to probe one whose registration lapsed. */
  private readonly lastSeen = new Map<string, { info: WorkerInfo; at: number }>();

  /**
   * Registrations parsed, by their stored text: a heartbeat rewrites the same text, so each is
   * parsed once, not on every look (several a step; parsing 256 took 0.49 ms, median of 200). Callers only read them.
   */
  private readonly parsed = new Map<string, WorkerInfo | null>();

  /** A registration that does not parse is left out (as if the worker were gone): it cannot be given work. */
  private parse(raw: string): WorkerInfo | undefined {
    let w = this.parsed.get(raw);
    if (w === undefined) {
      [w = null] = parseStoredList(workerInfoSchema, [raw], 'worker registration');
      this.parsed.set(raw, w);
    }
    return w ?? undefined;
  }

  async alive(): Promise<WorkerInfo[]> {
    const ids = (await this.redis.smembers(this.keys.workers)).sort();
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.keys.worker(id)));
    const dead = ids.filter((_, i) => !raws[i]);
    if (dead.length) await this.redis.srem(this.keys.workers, ...dead);
    const infos = raws.flatMap((raw) => {
      const w = raw ? this.parse(raw) : undefined;
      return w ? [w] : [];
    });
    if (this.parsed.size > 2 * ids.length + 64) {
      const current = new Set(raws);
      for (const raw of this.parsed.keys()) if (!current.has(raw)) this.parsed.delete(raw);
    }
    const now = Date.now();
    for (const w of infos) this.lastSeen.set(w.id, { info: w, at: now });
    // Workers gone for ten minutes (drained, or lost long ago) are forgotten: the map stays the
    // size of the recent pool, not of every worker that ever ran.
    for (const [id, seen] of this.lastSeen) if (now - seen.at > 600_000) this.lastSeen.delete(id);
    return infos;
  }

  /**
   * Which of `ids`, whose registrations lapsed, are really gone. A heartbeat can be late without
   * the worker being dead (an oversubscribed host, a long GC): a worker whose /healthz still
   * accepts a connection is waited for, up to `graceMs`, to register again. One whose port
   * refuses (the process is gone), or still unregistered at the end, is lost.
   */
  async confirmLost(ids: string[], graceMs: number): Promise<string[]> {
    const end = Date.now() + graceMs;
    const lost: string[] = [];
    await Promise.all(
      ids.map(async (id) => {
        const metrics = this.lastSeen.get(id)?.info.metrics;
        while (Date.now() < end) {
          if (await this.redis.exists(this.keys.worker(id))) return;
          if (!metrics || !(await answers(metrics))) break;
          await new Promise((r) => setTimeout(r, 500));
        }
        if (!(await this.redis.exists(this.keys.worker(id)))) lost.push(id);
      }),
    );
    for (const id of lost) this.lastSeen.delete(id);
    return lost;
  }

  /** The ids whose registrations have lapsed (dead, or late: see confirmLost). */
  async lapsed(ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const found = await this.redis.exists(...ids.map((id) => this.keys.worker(id)));
    if (found === ids.length) return [];
    const each = await Promise.all(ids.map((id) => this.redis.exists(this.keys.worker(id))));
    return ids.filter((_, i) => !each[i]);
  }
}

/** The largest budget among registered workers (memory and speed each at their largest), if any advertises one. */
export function largestBudget(workers: WorkerInfo[]): WorkerBudget | undefined {
  const budgets = workers.flatMap((w) => (w.budget ? [w.budget] : []));
  if (!budgets.length) return undefined;
  // A buffer limit binds only if every worker has one (a CPU worker can hold any tensor its memory can).
  const limits = budgets.flatMap((b) => (b.maxBufferBytes === undefined ? [] : [b.maxBufferBytes]));
  return {
    memoryBytes: Math.max(...budgets.map((b) => b.memoryBytes)),
    gflops: Math.max(...budgets.map((b) => b.gflops)),
    ...(limits.length === budgets.length && { maxBufferBytes: Math.max(...limits) }),
  };
}

/** Whether a worker's /healthz takes a connection and answers (any status) within a second. */
async function answers(hostPort: string): Promise<boolean> {
  try {
    await fetch(`http://${hostPort}/healthz`, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch (err) {
    // A timeout is a busy process, not a dead one; a refused connection is a dead one.
    return (err as Error).name === 'TimeoutError';
  }
}
