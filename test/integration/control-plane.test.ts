import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { redisKeys } from '@facenet/protocol';
import { api, JobView, seedFinishedJobs, startCluster, TestCluster, waitForState } from '../cluster-helpers';
import { tempDir } from '../helpers';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const tinyJob = (steps: number) => ({
  dataset: { kind: 'synthetic', identities: 12, imagesPerIdentity: 4 },
  train: { model: { architecture: 'tiny', imageSize: 24 }, batch: { P: 4, K: 2 }, steps },
});

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
}

async function timedMs(url: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url);
  await res.arrayBuffer();
  assert.equal(res.status, 200, url);
  return performance.now() - t0;
}

/**
 * An operator's cluster after weeks: 1,000 finished jobs with 200 step records each in Redis.
 * Before: the coordinator re-read and parsed every record twice a second (5.5 s of CPU per 10 s
 * with 300 jobs), /healthz took 1.7 s, GET /v1/jobs returned everything (?limit ignored) in
 * 3.9 s, and a 5-step job took 37 s end to end.
 */
describe('the control plane with 1,000 finished jobs', function () {
  this.timeout(300_000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;
  const seeded: string[] = [];

  before(async () => {
    t = tempDir('facenet-control-');
    cluster = await startCluster(1, join(t.dir, 'ckpt'), { FACENET_KEEP_FINISHED_JOBS: '5000' }, ['--no-miner', '--no-evaluator']);
    seeded.push(...(await seedFinishedJobs(cluster, 1000)));
    const redis = new IORedis(REDIS);
    const keys = redisKeys(cluster.prefix);
    const header = await redis.strlen(keys.job(seeded[0]!));
    const steps = (await redis.lrange(keys.jobHistory(seeded[0]!), 0, -1)).reduce((n, h) => n + h.length, 0);
    console.log(
      `      seeded 1,000 finished jobs: ${(header / 1024).toFixed(1)} KB header + ${(steps / 1024).toFixed(0)} KB of 200 step records each`,
    );
    redis.disconnect();
  });
  after(async () => {
    await cluster?.stop();
    t?.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(cluster.logs.slice(-40).join('\n'));
  });

  it('idles under 5% of a core, answers /healthz (p99) and a page of jobs (median) within 50 ms', async () => {
    const cpu = async () => {
      const text = await (await fetch(`${cluster.url}/metrics`)).text();
      return Number(/^facenet_coordinator_process_cpu_seconds_total (\S+)$/m.exec(text)?.[1]);
    };
    const c0 = await cpu();
    const w0 = Date.now();
    await new Promise((r) => setTimeout(r, 10_000));
    const share = (await cpu()) - c0;
    const idle = share / ((Date.now() - w0) / 1000);
    const health: number[] = [];
    for (let i = 0; i < 200; i++) health.push(await timedMs(`${cluster.url}/healthz`));
    const pages: number[] = [];
    for (let i = 0; i < 20; i++) pages.push(await timedMs(`${cluster.url}/v1/jobs`));
    console.log(
      `      coordinator idle CPU ${(100 * idle).toFixed(1)}% of a core; /healthz p99 ${quantile(health, 0.99).toFixed(1)} ms; page of 50 jobs median ${quantile(pages, 0.5).toFixed(1)} ms`,
    );
    assert.ok(idle < 0.05, `idle CPU ${(100 * idle).toFixed(1)}%`);
    assert.ok(quantile(health, 0.99) < 50, `/healthz p99 ${quantile(health, 0.99)} ms`);
    assert.ok(quantile(pages, 0.5) < 50, `GET /v1/jobs median ${quantile(pages, 0.5)} ms`);
  });

  it('pages through every job newest first by cursor, honours limit and filters by state', async () => {
    const first = await fetch(`${cluster.url}/v1/jobs?limit=5`);
    assert.equal(((await first.json()) as unknown[]).length, 5);
    assert.match(first.headers.get('link') ?? '', /<\/v1\/jobs\?limit=5&cursor=\d+%3A[\w.-]+>; rel="next"/);
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const res: Response = await fetch(`${cluster.url}/v1/jobs?limit=200${cursor ? `&cursor=${cursor}` : ''}`);
      const page = (await res.json()) as JobView[];
      ids.push(...page.map((j) => j.id));
      cursor = res.headers.get('x-next-cursor');
    } while (cursor);
    assert.equal(ids.length, 1001);
    assert.equal(new Set(ids).size, 1001, 'a job appeared on two pages');
    assert.deepEqual(ids.slice(1), seeded, 'not newest first');
    const failed = (await api<JobView[]>(cluster.url, 'GET', '/v1/jobs?state=failed&limit=500')).map((j) => j.state);
    assert.equal(failed.length, 250);
    assert.ok(failed.every((s) => s === 'failed'));
    await assert.rejects(api(cluster.url, 'GET', '/v1/jobs?limit=0'), /HTTP 400.*limit/);
    await assert.rejects(api(cluster.url, 'GET', '/v1/jobs?state=done'), /HTTP 400.*state/);
  });

  it("pages a job's step history, newest page first", async () => {
    const id = seeded[0]!;
    const res = await fetch(`${cluster.url}/v1/jobs/${id}/history?limit=150`);
    const newest = (await res.json()) as { step: number }[];
    assert.deepEqual(
      newest.map((h) => h.step),
      Array.from({ length: 150 }, (_, i) => 50 + i),
    );
    assert.equal(res.headers.get('x-next-cursor'), '150');
    const older = await api<{ step: number }[]>(cluster.url, 'GET', `/v1/jobs/${id}/history?limit=150&cursor=150`);
    assert.deepEqual(
      older.map((h) => h.step),
      Array.from({ length: 50 }, (_, i) => i),
    );
  });

  it('runs a new 5-step job end to end in seconds', async () => {
    const t0 = Date.now();
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', tinyJob(5));
    await waitForState(cluster.url, job.id, ['completed'], 60_000);
    const s = (Date.now() - t0) / 1000;
    console.log(`      a 5-step job took ${s.toFixed(1)} s end to end`);
    assert.ok(s < 20, `${s} s`);
  });
});
