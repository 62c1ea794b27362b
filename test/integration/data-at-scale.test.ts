import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, linkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { JobRecord, redisKeys, WorkerInfo } from '@facenet/protocol';
import { api, JobView, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { CLI, ORL, tempDir } from '../helpers';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const train = (steps: number) => ({ model: { architecture: 'tiny', imageSize: 24 }, batch: { P: 4, K: 2 }, virtualShards: 2, steps });

/** The largest event-loop delay each service saw since its last scrape (prom-client resets the histogram per scrape). */
async function loopLagMax(endpoints: Record<string, string>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, url] of Object.entries(endpoints)) {
    const text = await (await fetch(url)).text();
    out[name] = Number(/^facenet_\w+_nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1]) * 1000;
  }
  return out;
}

async function read(cluster: TestCluster, id: string): Promise<JobRecord> {
  const redis = new IORedis(REDIS);
  try {
    return JSON.parse((await redis.get(redisKeys(cluster.prefix).job(id))) as string) as JobRecord;
  } finally {
    redis.disconnect();
  }
}

/**
 * Data at users' sizes through `facenet up`. Before: the coordinator, every worker, the miner and
 * the evaluator rescanned a job's folder when it started (100k files: /healthz stalled 4.5 s and
 * a live worker was declared lost); manifests did not exist.
 */
describe('data at scale: indexes stored at admission, read by every process', function () {
  this.timeout(400_000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;

  before(async () => {
    t = tempDir('facenet-data-');
    // 100,000 image files: 5,000 identities x 20 hard links to one real face (no disk to speak of).
    // (A file takes at most 65,000 links on ext4: one real face per 1,000 identities.)
    const big = join(t.dir, 'data', 'big');
    mkdirSync(big, { recursive: true });
    for (let i = 0; i < 5000; i++) {
      const face = join(t.dir, 'data', `face-${Math.floor(i / 1000)}.pgm`);
      if (i % 1000 === 0) copyFileSync(join(ORL, `s${1 + i / 1000}`, '1.pgm'), face);
      const dir = join(big, `person_${String(i).padStart(5, '0')}`);
      mkdirSync(dir);
      for (let j = 0; j < 20; j++) linkSync(face, join(dir, `${j}.pgm`));
    }
    // ORL as a manifest, written by the CLI.
    cpSync(ORL, join(t.dir, 'data', 'orl'), { recursive: true });
    execFileSync(process.execPath, [CLI, 'data', 'manifest', join(t.dir, 'data', 'orl'), '--out', join(t.dir, 'data', 'orl.csv')]);
    cluster = await startCluster(2, join(t.dir, 'ckpt'), { FACENET_DATA_ROOTS: join(t.dir, 'data') });
  });
  after(async () => {
    await cluster?.stop();
    t?.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(cluster.logs.slice(-40).join('\n'));
  });

  it('trains a manifest job at W=2; workers, miner and evaluator read the stored index (a manifest has no other)', async () => {
    const created = await api<JobView>(cluster.url, 'POST', '/v1/jobs', {
      dataset: { kind: 'manifest', path: join(t.dir, 'data', 'orl.csv') },
      worldSize: 2,
      holdout: 8,
      curriculum: { enabled: true },
      train: { ...train(8), checkpointEvery: 4 },
    });
    const done = await waitForState(cluster.url, created.id, ['completed', 'failed'], 180_000);
    assert.equal(done.state, 'completed', JSON.stringify(done));
    const record = await read(cluster, created.id);
    assert.equal(record.dataIndex?.images, 400);
    assert.equal(record.dataIndex?.identities, 40);
    // The evaluator scored the held-out people, and the miner planned from the training ones: both
    // could only have built the manifest's source from the stored index.
    await waitFor(
      async () => (await api<{ evaluation: { count: number } }>(cluster.url, 'GET', `/v1/jobs/${created.id}`)).evaluation.count > 0,
      60_000,
      'an evaluation of the manifest job',
    );
    await waitFor(
      async () =>
        (await api<{ version?: number } | null>(cluster.url, 'GET', `/v1/jobs/${created.id}/plan`).catch(() => null))?.version !==
        undefined,
      60_000,
      'a mining plan of the manifest job',
    );
  });

  for (const [what, dataset] of [
    ['a 100,000-image folder', () => ({ kind: 'folder', path: join(t.dir, 'data', 'big') })],
    ['a 2,000,000-image synthetic set', () => ({ kind: 'synthetic', identities: 100_000, imagesPerIdentity: 20 })],
  ] as const) {
    it(`keeps every event loop under 100 ms from admission to the end of a job on ${what}`, async () => {
      const workers = await api<WorkerInfo[]>(cluster.url, 'GET', '/v1/workers');
      const endpoints: Record<string, string> = { coordinator: `${cluster.url}/metrics` };
      for (const w of workers) endpoints[w.id] = `http://${w.metrics}/metrics`;
      await loopLagMax(endpoints); // starts each service's window now
      let stop = false;
      const health: number[] = [];
      const probe = (async () => {
        while (!stop) {
          const t0 = performance.now();
          await (await fetch(`${cluster.url}/healthz`)).arrayBuffer();
          health.push(performance.now() - t0);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const t0 = performance.now();
      const created = await api<JobView>(cluster.url, 'POST', '/v1/jobs', { dataset: dataset(), worldSize: 2, train: train(3) });
      const admitted = performance.now() - t0;
      const done = await waitForState(cluster.url, created.id, ['completed', 'failed'], 180_000);
      stop = true;
      await probe;
      const lag = await loopLagMax(endpoints);
      const record = await read(cluster, created.id);
      console.log(
        `      ${what}: admitted in ${(admitted / 1000).toFixed(1)} s; /healthz max ${Math.max(...health).toFixed(0)} ms; event-loop lag max ${Object.entries(
          lag,
        )
          .map(([k, v]) => `${k.replace(/-[0-9a-f]+$/, '')} ${v.toFixed(0)} ms`)
          .join(
            ', ',
          )}; faults ${record.faults.length}${record.dataIndex ? `; stored index ${(record.dataIndex.bytes / record.dataIndex.images).toFixed(1)} bytes an image` : ''}`,
      );
      assert.equal(done.state, 'completed', JSON.stringify(done));
      assert.equal(record.faults.length, 0, JSON.stringify(record.faults));
      assert.ok(Math.max(...health) < 200, `/healthz took ${Math.max(...health)} ms`);
      for (const [name, ms] of Object.entries(lag)) assert.ok(ms < 100, `${name}'s event loop stalled ${ms.toFixed(0)} ms`);
    });
  }
});
