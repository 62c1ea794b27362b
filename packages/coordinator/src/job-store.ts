import IORedis from 'ioredis';
import { redisKeys } from '@facenet/protocol';
import { JobNotFoundError } from './errors';
import { JobRecord } from '@facenet/protocol';

/** Job records in Redis: all state lives there, so a restarted coordinator carries on. */
export class JobStore {
  private readonly keys: ReturnType<typeof redisKeys>;

  constructor(
    private readonly redis: IORedis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  async create(job: JobRecord): Promise<void> {
    await this.redis.multi().set(this.keys.job(job.id), JSON.stringify(job)).zadd(this.keys.jobs, Date.parse(job.createdAt), job.id).exec();
  }

  async get(id: string): Promise<JobRecord> {
    const raw = await this.redis.get(this.keys.job(id));
    if (!raw) throw new JobNotFoundError(id);
    return JSON.parse(raw) as JobRecord;
  }

  async save(job: JobRecord): Promise<void> {
    job.updatedAt = new Date().toISOString();
    await this.redis.set(this.keys.job(job.id), JSON.stringify(job));
  }

  /** Reads, changes and writes one job (the coordinator is the only writer; see the lock). */
  async update(id: string, change: (job: JobRecord) => void): Promise<JobRecord> {
    const job = await this.get(id);
    change(job);
    await this.save(job);
    return job;
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

  async list(): Promise<JobRecord[]> {
    const ids = await this.redis.zrange(this.keys.jobs, '0', '-1');
    if (ids.length === 0) return [];
    const raws = await this.redis.mget(ids.map((id) => this.keys.job(id)));
    return raws.flatMap((r) => (r ? [JSON.parse(r) as JobRecord] : []));
  }
}
