import IORedis, { ChainableCommander } from 'ioredis';
import {
  JOB_STATES,
  JobRecord,
  JobState,
  jobRecordSchema,
  parseStored,
  parseStoredList,
  redisKeys,
  StepRecord,
  stepRecordSchema,
  stepSummary,
  StoredRecordError,
} from '@facenet/protocol';
import { JobNotFoundError } from './errors';
import { HistorySegments, SPILL_BATCH } from './history-segments';

const STATES: readonly JobState[] = JOB_STATES;
/** Parsed headers kept, by job id, with the stored text they came from (see `parse`). */
const PARSED_KEPT = 512;
/** The states the scheduler drives: it never reads a finished or paused job. */
export const ACTIVE_STATES: readonly JobState[] = ['pending', 'running'];

/**
 * Step records kept per job in its history list (the newest). With HistorySegments, older ones
 * move to disk in batches (spillHistory) and the list holds at most HISTORY_CAP + 2 SPILL_BATCH
 * even when a spill fails; without, older ones are trimmed.
 */
export const HISTORY_CAP = 1000;

/** One page of jobs, newest first, and the cursor of the next (undefined: this was the last). */
export interface JobPage {
  jobs: JobRecord[];
  next?: string;
}

/**
 * Job records in Redis: all state lives there, so a restarted coordinator carries on. Beside
 * the records, an index of ids by creation time and one per state, kept in the same
 * transaction as every write, so listing a state or a page costs that page, never every job.
 */
export class JobStore {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly parsed = new Map<string, { raw: string; job: JobRecord }>();

  constructor(
    private readonly redis: IORedis,
    prefix: string,
    /** Where a stored record that does not parse is reported when a listing leaves it out. */
    private readonly log?: (line: string) => void,
    /** Where histories longer than HISTORY_CAP continue on disk (none: they are trimmed). */
    private readonly segments?: HistorySegments,
  ) {
    this.keys = redisKeys(prefix);
  }

  async create(job: JobRecord): Promise<void> {
    const score = Date.parse(job.createdAt);
    const m = this.redis
      .multi()
      .set(this.keys.job(job.id), JSON.stringify(job))
      .zadd(this.keys.jobs, score, job.id)
      .zadd(this.keys.jobsInState(job.state), score, job.id);
    if (job.restoreFrom) m.sadd(this.keys.pinnedCheckpoints, job.restoreFrom);
    await m.exec();
  }

  async get(id: string): Promise<JobRecord> {
    const raw = await this.redis.get(this.keys.job(id));
    if (!raw) throw new JobNotFoundError(id);
    return this.parse(raw, id);
  }

  /**
   * A stored record, checked and upgraded (stored-records.ts); records from before the history
   * list carry their steps inline. A running job's header is read many times a step and written
   * once, so the check runs once per stored version: the same text again gets a copy of
   * the record parsed last time (callers change what they get; the copy is theirs).
   */
  private parse(raw: string, id: string): JobRecord {
    const kept = this.parsed.get(id);
    if (kept?.raw === raw) return structuredClone(kept.job);
    const job = parseStored(jobRecordSchema, raw, `job ${id}`);
    if (job.history && !job.recent) job.recent = job.history.slice(-10).map(stepSummary);
    this.parsed.delete(id);
    this.parsed.set(id, { raw, job: structuredClone(job) });
    if (this.parsed.size > PARSED_KEPT) this.parsed.delete(this.parsed.keys().next().value as string);
    return job;
  }

  /**
   * Reads, changes and writes one job (the coordinator is the only writer; see the lock). A
   * committed step's record goes to the history list in the same transaction: the header written
   * per step stays the same size however long the job runs.
   */
  async update(
    id: string,
    change: (job: JobRecord) => void,
    committed?: StepRecord,
    alsoInTransaction?: (m: ChainableCommander) => void,
  ): Promise<JobRecord> {
    const job = await this.get(id);
    const was = job.state;
    change(job);
    if (committed) job.recent = [...(job.recent ?? []), stepSummary(committed)].slice(-10);
    job.updatedAt = new Date().toISOString();
    const m = this.redis.multi().set(this.keys.job(job.id), JSON.stringify(job));
    const kept = this.segments ? HISTORY_CAP + 2 * SPILL_BATCH : HISTORY_CAP;
    if (committed) m.rpush(this.keys.jobHistory(id), JSON.stringify(committed)).ltrim(this.keys.jobHistory(id), -kept, -1);
    alsoInTransaction?.(m);
    if (job.state !== was)
      m.zrem(this.keys.jobsInState(was), job.id).zadd(this.keys.jobsInState(job.state), Date.parse(job.createdAt), job.id);
    await m.exec();
    return job;
  }

  /**
   * A page of a job's step history, oldest first: the newest `limit` records after skipping
   * `skip` newer ones; `next` is the skip of the page before it (undefined: none). Records spilled
   * to disk are read from their segments.
   */
  async history(id: string, o: { limit: number; skip: number }): Promise<{ steps: StepRecord[]; next?: number }> {
    const key = this.keys.jobHistory(id);
    const [inRedis, job] = await Promise.all([this.redis.llen(key), this.get(id)]);
    const spilled = this.segments ? (job.historySpilled ?? 0) : 0;
    // The page as indices into the whole history, oldest 0: [start, end).
    const end = Math.max(0, spilled + inRedis - o.skip);
    const start = Math.max(0, end - o.limit);
    const [fromDisk, fromRedis] = await Promise.all([
      start < spilled ? (this.segments as HistorySegments).read(id, start, Math.min(end, spilled)) : [],
      end > spilled ? this.redis.lrange(key, Math.max(0, start - spilled), end - spilled - 1) : [],
    ]);
    const steps = parseStoredList(stepRecordSchema, [...fromDisk, ...fromRedis], `job ${id} history`, (err) =>
      this.log?.(`[coordinator] ${err.message}; left out`),
    );
    return { steps, next: start > 0 ? o.skip + o.limit : undefined };
  }

  /**
   * Once a job's list holds HISTORY_CAP + SPILL_BATCH records, writes the oldest SPILL_BATCH to a
   * segment on disk, then drops them from Redis in the transaction that counts them in the job's
   * header (a crash before it leaves them in Redis, and the same segment is written again).
   */
  async spillHistory(id: string): Promise<boolean> {
    if (!this.segments) return false;
    const key = this.keys.jobHistory(id);
    if ((await this.redis.llen(key)) < HISTORY_CAP + SPILL_BATCH) return false;
    const [oldest, job] = await Promise.all([this.redis.lrange(key, 0, SPILL_BATCH - 1), this.get(id)]);
    const offset = job.historySpilled ?? 0;
    await this.segments.write(id, offset, oldest);
    await this.update(
      id,
      (j) => void (j.historySpilled = offset + SPILL_BATCH),
      undefined,
      (m) => m.ltrim(key, SPILL_BATCH, -1),
    );
    return true;
  }

  /** The whole history as stored (raw JSON lines, oldest first): the spilled segments, then the list. */
  async wholeHistory(job: JobRecord): Promise<string[]> {
    const spilled = this.segments ? (job.historySpilled ?? 0) : 0;
    const [disk, list] = await Promise.all([
      spilled ? (this.segments as HistorySegments).read(job.id, 0, spilled) : [],
      this.redis.lrange(this.keys.jobHistory(job.id), 0, -1),
    ]);
    return [...disk, ...list];
  }

  /**
   * Marks the history's steps after `step` as undone by a rewind (a rare path: reads the list in
   * Redis, the newest 1,000-2,000 records; a rewind further back than that leaves the records on
   * disk unmarked).
   */
  async markRolledBack(id: string, step: number): Promise<void> {
    const key = this.keys.jobHistory(id);
    const raws = await this.redis.lrange(key, 0, -1);
    const m = this.redis.multi();
    raws.forEach((raw, i) => {
      const h = parseStored(stepRecordSchema, raw, `job ${id} history [${i}]`);
      if (h.step > step && !h.rolledBack) m.lset(key, i, JSON.stringify({ ...h, rolledBack: true }));
    });
    await m.exec();
  }

  /** Asks a running job to pause or cancel at its next step boundary (a key of its own, so the
   * step loop's writes to the record cannot lose the request). */
  async request(id: string, what: 'pause' | 'cancel'): Promise<void> {
    await this.redis.set(this.keys.jobRequest(id), what);
  }

  async takeRequest(id: string): Promise<'pause' | 'cancel' | null> {
    return (await this.redis.getdel(this.keys.jobRequest(id))) as 'pause' | 'cancel' | null;
  }

  async peekRequest(id: string): Promise<'pause' | 'cancel' | null> {
    return (await this.redis.get(this.keys.jobRequest(id))) as 'pause' | 'cancel' | null;
  }

  private async records(ids: string[]): Promise<JobRecord[]> {
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.keys.job(id)));
    return raws.flatMap((r, i) => {
      if (!r) return [];
      try {
        return [this.parse(r, ids[i] as string)];
      } catch (err) {
        // One bad record must not hide every other job from the scheduler and the API.
        if (!(err instanceof StoredRecordError)) throw err;
        this.log?.(`[coordinator] ${err.message}; left out of the listing`);
        return [];
      }
    });
  }

  /** The ids of jobs in the given states with their creation times, unordered. */
  private async idsInStates(states: readonly JobState[]): Promise<{ id: string; at: number }[]> {
    return (await Promise.all(states.map((s) => this.redis.zrange(this.keys.jobsInState(s), '0', '-1', 'WITHSCORES')))).flatMap(scored);
  }

  /** Jobs in the given states, oldest first. */
  async inStates(states: readonly JobState[]): Promise<JobRecord[]> {
    const ids = await this.idsInStates(states);
    return this.records(ids.sort((a, b) => a.at - b.at || a.id.localeCompare(b.id)).map((x) => x.id));
  }

  /** The jobs the scheduler drives (pending and running). */
  active(): Promise<JobRecord[]> {
    return this.inStates(ACTIVE_STATES);
  }

  /**
   * A page of jobs, newest first, of one state or all; `cursor` is the previous page's `next`
   * (the position after its last job, so jobs created meanwhile do not shift the pages).
   */
  async page(o: { limit: number; state?: JobState; cursor?: string }): Promise<JobPage> {
    const key = o.state ? this.keys.jobsInState(o.state) : this.keys.jobs;
    const [score, id] = (o.cursor ?? '').split(':');
    // Newest first from the cursor's creation time down; jobs created in the same millisecond come
    // in descending id order, so those at or above the cursor's id were on an earlier page (the
    // 64 spare entries cover that many jobs created in one millisecond).
    const flat = await this.redis.zrevrangebyscore(key, o.cursor ? Number(score) : '+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, o.limit + 64);
    let entries = scored(flat);
    if (o.cursor) entries = entries.filter((e) => e.at < Number(score) || e.id < (id as string));
    const taken = entries.slice(0, o.limit);
    const last = taken[taken.length - 1];
    const more = entries.length > o.limit;
    return { jobs: await this.records(taken.map((e) => e.id)), next: more && last ? `${last.at}:${last.id}` : undefined };
  }

  /** Finished jobs past retention: beyond the newest `keep` of them, or finished before `before` (ms). */
  async expired(keep: number, before: number, limit = 100): Promise<string[]> {
    const finished = await this.idsInStates(['completed', 'failed', 'cancelled']);
    finished.sort((a, b) => b.at - a.at);
    return finished
      .filter((e, i) => i >= keep || e.at < before)
      .slice(0, limit)
      .map((e) => e.id);
  }

  /** Deletes a job's record and everything Redis keeps for it (the caller archived what it needs). */
  async remove(job: JobRecord): Promise<void> {
    this.parsed.delete(job.id);
    const k = this.keys;
    const plans = await this.redis.zrange(k.plans(job.id), '0', '-1');
    await this.redis
      .multi()
      .del(
        k.job(job.id),
        k.jobRequest(job.id),
        k.jobHistory(job.id),
        k.evaluations(job.id),
        k.skippedEvaluations(job.id),
        k.plans(job.id),
        k.planVersion(job.id),
        k.skippedCheckpoints(job.id),
        ...plans.map((v) => k.plan(job.id, Number(v))),
      )
      .zrem(k.jobs, job.id)
      .zrem(k.jobsInState(job.state), job.id)
      .exec();
  }

  /** Checkpoint folders some job starts from. */
  async pinned(): Promise<Set<string>> {
    return new Set(await this.redis.smembers(this.keys.pinnedCheckpoints));
  }

  /**
   * Indexes records written before the state index existed (once, at start, in pages so the
   * event loop never holds them all): a job without an index entry is added to its state's set,
   * and steps kept inline in its record move to its history list.
   */
  async indexOlderRecords(): Promise<number> {
    const indexed = new Set((await Promise.all(STATES.map((s) => this.redis.zrange(this.keys.jobsInState(s), '0', '-1')))).flat());
    let added = 0;
    const total = await this.redis.zcard(this.keys.jobs);
    for (let start = 0; start < total; start += 200) {
      const ids = (await this.redis.zrange(this.keys.jobs, String(start), String(start + 199))).filter((id) => !indexed.has(id));
      const m = this.redis.multi();
      for (const job of await this.records(ids)) {
        m.zadd(this.keys.jobsInState(job.state), Date.parse(job.createdAt), job.id);
        if (job.history) {
          if (job.history.length) m.rpush(this.keys.jobHistory(job.id), ...job.history.map((h) => JSON.stringify(h)));
          delete job.history;
          m.set(this.keys.job(job.id), JSON.stringify(job));
        }
        if (job.restoreFrom) m.sadd(this.keys.pinnedCheckpoints, job.restoreFrom);
        added++;
      }
      await m.exec();
    }
    return added;
  }
}

/** A sorted set read WITHSCORES ([member, score, member, score, ...]) as ids and creation times. */
function scored(flat: string[]): { id: string; at: number }[] {
  return Array.from({ length: flat.length / 2 }, (_, i) => ({ id: flat[2 * i] as string, at: Number(flat[2 * i + 1]) }));
}
