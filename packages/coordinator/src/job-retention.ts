import type IORedis from 'ioredis';
import { redisKeys } from '@facenet/protocol';
import { DatasetIndexStore } from '@facenet/service-kit';
import { HistorySegments } from './history-segments';
import { JobArchive } from './job-archive';
import type { JobStore } from './job-store';

export interface JobRetentionOptions {
  /** Finished jobs kept queryable, newest first; older ones are archived and removed from Redis. */
  keepFinished: number;
  /** Finished jobs older than this (by creation) are archived and removed whatever their number. */
  maxAgeMs: number;
  checkpointRoot: string;
  log: (line: string) => void;
}

/**
 * Keeps Redis to the jobs people still query: a finished job past retention is archived beside its
 * checkpoints (job-archive.ts: record, evaluations, step history), and only then removed from
 * Redis (a failed write removes nothing); the API keeps answering it from the archive. Runs a bounded batch per sweep, so a
 * backlog of thousands drains over a few sweeps without holding the event loop.
 */
export class JobRetention {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly indexes: DatasetIndexStore;
  private readonly archive: JobArchive;
  private readonly segments: HistorySegments;

  constructor(
    private readonly redis: IORedis,
    private readonly store: JobStore,
    prefix: string,
    private readonly o: JobRetentionOptions,
  ) {
    this.keys = redisKeys(prefix);
    this.indexes = new DatasetIndexStore(redis, prefix);
    this.archive = new JobArchive(o.checkpointRoot);
    this.segments = new HistorySegments(o.checkpointRoot);
  }

  /** Archives and removes up to `batch` expired jobs; returns how many. */
  async sweep(batch = 100): Promise<number> {
    const ids = await this.store.expired(this.o.keepFinished, Date.now() - this.o.maxAgeMs, batch);
    let removed = 0;
    for (const id of ids) {
      const job = await this.store.get(id).catch(() => undefined);
      if (!job) continue;
      const [evaluations, history] = await Promise.all([this.redis.lrange(this.keys.evaluations(id), 0, -1), this.store.wholeHistory(job)]);
      try {
        await this.archive.write(
          job,
          evaluations.map((e) => JSON.parse(e) as unknown),
          history,
        );
      } catch (err) {
        this.o.log(`[coordinator] job ${id}: not archived, kept in Redis: ${(err as Error).message}`);
        continue;
      }
      await this.store.remove(job);
      // The archive holds the whole history now: the segments it was read from go.
      await this.segments.remove(id).catch(() => undefined);
      if (job.dataIndex && (await this.indexes.release(job.dataIndex.id, id)))
        this.o.log(`[coordinator] retention: dataset index ${job.dataIndex.id.slice(0, 12)} removed with the last job using it`);
      removed++;
    }
    if (removed)
      this.o.log(
        `[coordinator] retention: archived ${removed} finished job(s) to ${this.o.checkpointRoot}/<id>/ (record, evaluations, step history)`,
      );
    return removed;
  }
}
