import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import IORedis from 'ioredis';
import { Coordinator, JobStore, parseQueues } from '@facenet/coordinator';
import { redisKeys } from '@facenet/protocol';
import type { StepRecord } from '@facenet/protocol';
import { deleteKeysUnder } from '@facenet/service-kit';
import { CLI, storedJob, storedStep, tempDir } from '../helpers';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN = 'admin-token-0123456789abcdef';
const TEAM_B = 'team-b-token-0123456789abcdef';

/**
 * Retention moves a finished job out of Redis; the API and the CLI must still answer it whole:
 * its record, its evaluations and every step Redis held, read back from the archive on disk.
 */
describe('job archive: a job past retention stays readable through the API and the CLI', function () {
  this.timeout(60_000);
  let t: ReturnType<typeof tempDir>;
  let c: Coordinator;
  let redis: IORedis;
  const prefix = `fnarc-${randomBytes(4).toString('hex')}`;
  const id = 'job-archived-1';
  const steps: StepRecord[] = Array.from({ length: 240 }, (_, i) => ({ ...storedStep(i + 1, 1 / (i + 2)), images: 40 + (i % 3) }));

  const call = async (path: string, token = ADMIN) => {
    const res = await fetch(`${c.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json().catch(() => null)) as unknown, next: res.headers.get('x-next-cursor') };
  };

  before(async () => {
    t = tempDir('facenet-archive-');
    redis = new IORedis(REDIS);
    // A finished job with 240 committed steps and an evaluation, written as the coordinator writes them.
    const store = new JobStore(redis, prefix);
    await store.create({ ...storedJob(id, 'running', 2), spec: { ...storedJob(id, 'running').spec, queue: 'team-a' } });
    for (const s of steps) await store.update(id, (j) => void ((j.step = s.step), (j.last = s)), s);
    await store.update(id, (j) => void (j.state = 'completed'));
    const evaluation = {
      ...{ jobId: id, step: 240, checkpointDir: join(t.dir, 'ckpt', id, 'step-000240'), set: 'holdout', pairs: 600, folds: 10 },
      ...{ accuracy: 0.9, accuracyStd: 0.01, val: 0.61, valStd: 0.05, far: 0.001, farTarget: 0.001, auc: 0.95, threshold: 1.1 },
      ...{ droppedPairs: 0, skippedImages: 0, seconds: 3, at: new Date().toISOString() },
    };
    await redis.rpush(redisKeys(prefix).evaluations(id), JSON.stringify(evaluation));
    const tokens = join(t.dir, 'tokens');
    writeFileSync(tokens, `admin:${ADMIN}\nteam:team-b:${TEAM_B}\n`);
    c = new Coordinator(
      {
        redisUrl: REDIS,
        port: 0,
        prefix,
        checkpointRoot: join(t.dir, 'ckpt'),
        apiTokensFile: tokens,
        keepFinishedJobs: 0,
        queues: parseQueues('team-a=2:1,team-b=2:1'),
      },
      () => undefined,
    );
    await c.start();
    // The first scheduler tick runs retention.
    const deadline = Date.now() + 20_000;
    while (existsSync(join(t.dir, 'ckpt', id, 'job-record.json')) === false && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
  });
  after(async () => {
    await c?.close();
    redis?.disconnect();
    await deleteKeysUnder(REDIS, prefix);
    t?.cleanup();
  });

  it('is gone from Redis and archived beside its checkpoints, with its step history compressed', async () => {
    assert.equal(await redis.exists(redisKeys(prefix).job(id)), 0, 'retention left the job in Redis');
    assert.equal(await redis.exists(redisKeys(prefix).jobHistory(id)), 0);
    assert.ok(existsSync(join(t.dir, 'ckpt', id, 'job-history.jsonl.gz')));
  });

  it('GET /v1/jobs/:id answers from the archive (state, step, evaluations, archivedAt)', async () => {
    const r = await call(`/v1/jobs/${id}`);
    assert.equal(r.status, 200);
    const view = r.body as { state: string; step: number; archivedAt: string; evaluation: { count: number; latest: { val: number } } };
    assert.equal(view.state, 'completed');
    assert.equal(view.step, 240);
    assert.ok(Date.parse(view.archivedAt) > 0);
    assert.equal(view.evaluation.count, 1);
    assert.equal(view.evaluation.latest.val, 0.61);
  });

  it('GET /v1/jobs/:id/history pages through every step, equal to what Redis held', async () => {
    const got: StepRecord[] = [];
    let cursor: string | null = '0';
    while (cursor !== null) {
      const r = await call(`/v1/jobs/${id}/history?limit=100&cursor=${cursor}`);
      assert.equal(r.status, 200);
      got.unshift(...(r.body as StepRecord[]));
      cursor = r.next;
    }
    assert.deepEqual(got, steps);
  });

  it('another team’s token gets 404 for the archived job, as for a live one', async () => {
    assert.equal((await call(`/v1/jobs/${id}`, TEAM_B)).status, 404);
    assert.equal((await call(`/v1/jobs/${id}/history`, TEAM_B)).status, 404);
    assert.equal((await call('/v1/jobs/..%2F..%2Fetc/history')).status, 404);
  });

  it('facenet jobs get and facenet jobs history read it', async () => {
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, [CLI, ...args, '--api', c.url, '--token', ADMIN], { encoding: 'utf8' });
    assert.match((await run(['jobs', 'get', id])).stdout, /completed {2}step 240\/10 .* archived \d{4}-/);
    const h = await run(['jobs', 'history', id, '--limit', '3']);
    assert.match(h.stdout, /^step 238 {2}loss 0\.0042 .*\nstep 239 .*\nstep 240 /m);
    assert.match(h.stderr, /older: facenet jobs history job-archived-1 --cursor 3/);
  });
});
