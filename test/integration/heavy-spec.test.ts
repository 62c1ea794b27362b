import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { api, JobView, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { tempDir } from '../helpers';

/** Milliseconds a GET takes (the event loop behind it must answer within the README's bound). */
async function timed(url: string): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) });
  await res.arrayBuffer();
  return { ms: performance.now() - t0, status: res.status };
}

/**
 * Specs that once hung workers, on `facenet up` with one worker. Before: the spec below was
 * accepted, the worker drew 200,000 faces of 512 px on its main thread (heartbeats and /healthz
 * stopped), cancel answered 200 while the worker stayed blocked, and SIGTERM was ignored.
 */
describe('specs that cannot stall a worker', function () {
  this.timeout(300_000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;
  // ~40 s per step here (resnet-small, 192 px, 64 faces), well inside every budget: a step long
  // enough to be caught in flight.
  const slowJob = {
    dataset: { kind: 'synthetic', identities: 40, imagesPerIdentity: 6 },
    train: { model: { architecture: 'resnet-small', imageSize: 192 }, batch: { P: 16, K: 4 }, steps: 5, checkpointEvery: 0 },
  };
  const worker = async () => (await api<{ pid: number; metrics: string }[]>(cluster.url, 'GET', '/v1/workers'))[0]!;

  before(async () => {
    t = tempDir('facenet-heavy-');
    cluster = await startCluster(1, join(t.dir, 'ckpt'), {}, ['--no-miner', '--no-evaluator']);
  });
  after(async () => {
    await cluster?.stop();
    t?.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(cluster.logs.slice(-60).join('\n'));
  });

  it('refuses the spec that hung every worker at POST, naming what a step needs and what the worker has', async () => {
    const spec = {
      dataset: { kind: 'synthetic', identities: 100_000, imagesPerIdentity: 20 },
      train: { model: { architecture: 'tiny', imageSize: 512, embeddingDim: 65536 }, batch: { P: 10_000, K: 20 }, steps: 1e7 },
    };
    const health = timed(`${cluster.url}/healthz`);
    const err = await api(cluster.url, 'POST', '/v1/jobs', spec).then(
      () => assert.fail('the spec was accepted'),
      (e: { status: number; data: { issues: { path: string; message: string }[] } }) => e,
    );
    assert.equal(err.status, 400);
    const issue = err.data.issues.find((i) => i.path === 'train');
    assert.match(issue?.message ?? '', /200000 images of 512 px per rank .* needs ~[\d.]+ GiB; the largest worker budget is [\d.]+ GiB/);
    assert.ok((await health).ms < 200, `/healthz took ${(await health).ms} ms during admission`);
    assert.deepEqual(await api<unknown[]>(cluster.url, 'GET', '/v1/jobs'), [], 'a refused spec left a job behind');
  });

  it('cancel stops a step in flight within seconds, with no fault, and the worker serves the next job', async () => {
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', slowJob);
    await waitForState(cluster.url, job.id, ['running'], 60_000);
    await new Promise((r) => setTimeout(r, 5000)); // well inside the first step
    const w = await worker();
    // The worker's main thread is free while its data and compute threads work.
    const probes = [];
    for (let i = 0; i < 5; i++) probes.push((await timed(`http://${w.metrics}/healthz`)).ms);
    assert.ok(Math.max(...probes) < 200, `worker /healthz took ${probes.map((p) => p.toFixed(0)).join(', ')} ms during a step`);
    const t0 = Date.now();
    await api(cluster.url, 'POST', `/v1/jobs/${job.id}/cancel`);
    const done = await waitForState(cluster.url, job.id, ['cancelled'], 15_000);
    assert.ok(Date.now() - t0 < 10_000, `cancel took ${Date.now() - t0} ms`);
    assert.equal(done.step, 0, 'the interrupted step was committed');
    assert.equal(done.faults.length, 0, `cancel counted faults: ${JSON.stringify(done.faults)}`);
    await waitFor(async () => cluster.logs.some((l) => /cancelled, step in flight stopped/.test(l)), 5000, 'the worker to say it stopped');
    // Fresh compute and data threads: the next job trains to the end.
    const next = await api<JobView>(cluster.url, 'POST', '/v1/jobs', {
      dataset: { kind: 'synthetic', identities: 12, imagesPerIdentity: 4 },
      train: { model: { architecture: 'tiny', imageSize: 24 }, batch: { P: 4, K: 2 }, steps: 3 },
    });
    await waitForState(cluster.url, next.id, ['completed'], 120_000);
  });

  it('SIGTERM during a long step drains (503 at once), and a second SIGTERM exits at once', async () => {
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', slowJob);
    await waitForState(cluster.url, job.id, ['running'], 60_000);
    await new Promise((r) => setTimeout(r, 5000));
    const w = await worker();
    process.kill(w.pid, 'SIGTERM');
    await waitFor(async () => (await timed(`http://${w.metrics}/healthz`)).status === 503, 2000, 'the worker to report draining');
    const t0 = Date.now();
    process.kill(w.pid, 'SIGTERM');
    await waitFor(
      async () => {
        try {
          process.kill(w.pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      3000,
      'the worker to exit on the second SIGTERM',
    );
    assert.ok(Date.now() - t0 < 3000);
  });
});
