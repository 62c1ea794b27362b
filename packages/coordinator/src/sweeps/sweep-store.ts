import IORedis from 'ioredis';
import { parseStored, redisKeys, SweepRecord, sweepRecordSchema } from '@facenet/protocol';
import { CoordinatorError } from '../errors';

export class SweepNotFoundError extends CoordinatorError {
  constructor(readonly sweepId: string) {
    super(`no sweep '${sweepId}'`, 404);
  }
}

/**
 * Sweeps in Redis, beside the jobs: a record per sweep (JSON, read back through its schema) and a
 * sorted set of ids by creation time. Changes go through `update`, one at a time per sweep in
 * this process (the coordinator's lock makes it the only writer), so the runner's tick and a
 * cancel from the API never overwrite each other.
 */
export class SweepStore {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly chains = new Map<string, Promise<unknown>>();

  constructor(
    private readonly redis: IORedis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  async create(s: SweepRecord): Promise<void> {
    await this.redis
      .multi()
      .set(this.keys.sweep(s.id), JSON.stringify(s))
      .zadd(this.keys.sweeps, Date.parse(s.createdAt), s.id)
      .sadd(this.keys.sweepsRunning, s.id)
      .exec();
  }

  /** The running sweeps' ids (a set kept with the records: finished sweeps are never read by the runner). */
  runningIds(): Promise<string[]> {
    return this.redis.smembers(this.keys.sweepsRunning);
  }

  async get(id: string): Promise<SweepRecord> {
    const raw = await this.redis.get(this.keys.sweep(id));
    if (!raw) throw new SweepNotFoundError(id);
    return parseStored(sweepRecordSchema, raw, `sweep ${id}`);
  }

  /** Newest first, at most `limit`. */
  async list(limit = 100): Promise<SweepRecord[]> {
    const ids = await this.redis.zrevrange(this.keys.sweeps, 0, limit - 1);
    const out: SweepRecord[] = [];
    for (const id of ids) out.push(await this.get(id).catch(() => undefined as never));
    return out.filter(Boolean);
  }

  /** Reads, changes (possibly asynchronously) and writes one sweep; calls for one sweep run in turn. */
  update(id: string, change: (s: SweepRecord) => Promise<void> | void): Promise<SweepRecord> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.then(async () => {
      const s = await this.get(id);
      await change(s);
      s.updatedAt = new Date().toISOString();
      const write = this.redis.multi().set(this.keys.sweep(id), JSON.stringify(s));
      if (s.state !== 'running') write.srem(this.keys.sweepsRunning, id);
      await write.exec();
      return s;
    });
    const settled = next.catch(() => undefined);
    this.chains.set(id, settled);
    void settled.then(() => {
      if (this.chains.get(id) === settled) this.chains.delete(id);
    });
    return next;
  }
}
