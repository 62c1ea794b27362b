import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import { packIndex } from '@facenet/core';
import { JobRecord, redisKeys } from '@facenet/protocol';
import { compressIndex, DatasetIndexStore, deleteKeysUnder } from '@facenet/service-kit';
import { HistorySegments, JobArchive, JobRetention, JobStore } from '@facenet/coordinator';
import { storedJob, storedStep, tempDir } from '../helpers';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The job store's indexes and retention on a real Redis. */
describe('job store: state index and retention', () => {
  let redis: IORedis;
  let prefix: string;
  let store: JobStore;
  let t: ReturnType<typeof tempDir>;
  const record = (i: number, state: JobRecord['state'], ageDays = 0): JobRecord =>
    storedJob(`job-${String(i).padStart(3, '0')}`, state, ageDays, i);

  beforeEach(() => {
    redis = new IORedis(REDIS);
    prefix = `fntest-store-${randomBytes(4).toString('hex')}`;
    store = new JobStore(redis, prefix);
    t = tempDir('facenet-store-');
  });
  afterEach(async () => {
    redis.disconnect();
    await deleteKeysUnder(REDIS, prefix);
    t.cleanup();
  });

  it('keeps the state index in step with every transition, and the scheduler sees only pending and running jobs', async () => {
    for (let i = 0; i < 6; i++) await store.create(record(i, 'pending'));
    await store.update('job-001', (j) => void (j.state = 'running'));
    await store.update('job-002', (j) => void (j.state = 'completed'));
    await store.update('job-003', (j) => void (j.state = 'paused'));
    assert.deepEqual(
      (await store.active()).map((j) => j.id),
      ['job-000', 'job-001', 'job-004', 'job-005'],
    );
    assert.deepEqual(
      (await store.inStates(['completed', 'paused'])).map((j) => j.id),
      ['job-002', 'job-003'],
    );
  });

  it('indexes records written before the index existed, once', async () => {
    const keys = redisKeys(prefix);
    for (let i = 0; i < 450; i++) {
      const j = record(i, i % 3 === 0 ? 'running' : 'completed');
      await redis.multi().set(keys.job(j.id), JSON.stringify(j)).zadd(keys.jobs, Date.parse(j.createdAt), j.id).exec();
    }
    assert.equal((await store.active()).length, 0);
    const inline = {
      ...record(999, 'completed'),
      history: [storedStep(1, 0.5), storedStep(2, 0.4)],
    };
    await redis.multi().set(keys.job(inline.id), JSON.stringify(inline)).zadd(keys.jobs, 1, inline.id).exec();
    assert.deepEqual(
      (await store.get(inline.id)).recent?.map((h) => h.step),
      [1, 2],
      'an old record read before migration',
    );
    assert.equal(await store.indexOlderRecords(), 451);
    // Steps kept inline in old records move to the history list, and the record drops them.
    assert.deepEqual(
      (await store.history(inline.id, { limit: 10, skip: 0 })).steps.map((h) => h.loss),
      [0.5, 0.4],
    );
    assert.equal((JSON.parse((await redis.get(keys.job(inline.id))) as string) as JobRecord).history, undefined);
    assert.equal((await store.active()).length, 150);
    assert.equal(await store.indexOlderRecords(), 0);
  });

  it('archives finished jobs beyond the newest N or older than the age limit beside their checkpoints, then removes them from Redis', async () => {
    for (let i = 0; i < 30; i++) await store.create(record(i, i < 2 ? 'running' : 'completed'));
    await store.create(record(90, 'failed', 40)); // 40 days old
    await redis.rpush(redisKeys(prefix).evaluations('job-010'), JSON.stringify({ step: 5, val: 0.5 }));
    const retention = new JobRetention(redis, store, prefix, {
      keepFinished: 10,
      maxAgeMs: 30 * 86_400_000,
      checkpointRoot: t.dir,
      log: () => undefined,
    });
    assert.equal(await retention.sweep(), 19); // 28 finished + the old one, keep the newest 10
    const left = (await store.page({ limit: 100 })).jobs.map((j) => j.id);
    assert.equal(left.length, 12);
    assert.ok(left.includes('job-000') && left.includes('job-001'), 'a running job was removed');
    assert.ok(!left.includes('job-090'));
    const archived = JSON.parse(readFileSync(join(t.dir, 'job-010', 'job-record.json'), 'utf8')) as {
      job: JobRecord;
      evaluations: unknown[];
    };
    assert.equal(archived.job.id, 'job-010');
    assert.deepEqual(archived.evaluations, [{ step: 5, val: 0.5 }]);
    assert.equal(await redis.exists(redisKeys(prefix).evaluations('job-010')), 0);
    assert.ok(existsSync(join(t.dir, 'job-090', 'job-record.json')));
    assert.equal(await retention.sweep(), 0);
  });

  it('keeps a long history whole: the oldest records move to disk in segments, pages read across them, retention archives every step', async () => {
    const segments = new HistorySegments(t.dir);
    const long = new JobStore(redis, prefix, undefined, segments);
    await long.create(record(7, 'running'));
    const N = 2600;
    for (let step = 1; step <= N; step++) {
      await long.update('job-007', (j) => void (j.step = step), storedStep(step, 1 / step));
      if (step === 1500) {
        // A crash after the segment was written and before Redis dropped its records: the next spill writes it again.
        await segments.write('job-007', 0, await redis.lrange(redisKeys(prefix).jobHistory('job-007'), 0, 499));
      }
      await long.spillHistory('job-007');
    }
    // Spills at 1,500, 2,000 and 2,500 records: 1,500 on disk, 1,100 in Redis.
    assert.equal((await long.get('job-007')).historySpilled, 1500);
    assert.equal(await redis.llen(redisKeys(prefix).jobHistory('job-007')), 1100);
    const seen: number[] = [];
    for (let skip: number | undefined = 0; skip !== undefined;) {
      const page: { steps: { step: number }[]; next?: number } = await long.history('job-007', { limit: 333, skip });
      seen.unshift(...page.steps.map((h) => h.step));
      skip = page.next;
    }
    assert.deepEqual(
      seen,
      Array.from({ length: N }, (_, i) => i + 1),
    );
    await long.update('job-007', (j) => void (j.state = 'completed'));
    const retention = new JobRetention(redis, long, prefix, { keepFinished: 0, maxAgeMs: 0, checkpointRoot: t.dir, log: () => undefined });
    assert.equal(await retention.sweep(), 1);
    const archived = await new JobArchive(t.dir).history('job-007', { limit: N, skip: 0 });
    assert.deepEqual(
      archived.steps.map((h) => h.step),
      Array.from({ length: N }, (_, i) => i + 1),
    );
    assert.ok(!existsSync(join(t.dir, 'job-007', 'history')), 'the segments stay after the archive holds them');
  });

  it('removes a stored dataset index with the last job that used it', async () => {
    const indexes = new DatasetIndexStore(redis, prefix);
    const stored = compressIndex(packIndex({ names: ['a', 'b'], images: [['a/1.jpg', 'a/2.jpg'], ['b/1.jpg']] }));
    const ref = { id: 'f'.repeat(64), identities: 2, images: 3, bytes: 100 };
    for (const [i, state] of [
      [0, 'completed'],
      [1, 'completed'],
      [2, 'running'],
    ] as const) {
      const job = { ...record(i, state, 40), dataIndex: i < 2 ? ref : undefined };
      await indexes.put(ref.id, stored, job.id);
      await store.create(job);
    }
    const retention = new JobRetention(redis, store, prefix, { keepFinished: 0, maxAgeMs: 0, checkpointRoot: t.dir, log: () => undefined });
    await indexes.put(ref.id, stored, 'job-002'); // the running job uses it too
    assert.equal(await retention.sweep(), 2);
    assert.equal(await redis.exists(redisKeys(prefix).datasetIndex(ref.id)), 1, 'kept: a running job still uses it');
    assert.equal(await indexes.release(ref.id, 'job-002'), true);
    assert.equal(await redis.exists(redisKeys(prefix).datasetIndex(ref.id)), 0);
  });

  it('keeps a job in Redis when its archive cannot be written', async () => {
    await store.create(record(1, 'completed', 40));
    const notAFolder = join(t.dir, 'not-a-folder');
    writeFileSync(notAFolder, '');
    const retention = new JobRetention(redis, store, prefix, {
      keepFinished: 0,
      maxAgeMs: 86_400_000,
      checkpointRoot: notAFolder,
      log: () => undefined,
    });
    assert.equal(await retention.sweep(), 0);
    assert.equal((await store.get('job-001')).id, 'job-001');
  });
});
