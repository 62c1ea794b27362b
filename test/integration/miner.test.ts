import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { api, JobView, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { ORL, tempDir } from '../helpers';

const job = (steps: number) => ({
  dataset: { kind: 'folder', path: ORL },
  holdout: 10,
  worldSize: 2,
  train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 8, K: 5 }, virtualShards: 4, steps, checkpointEvery: 4, seed: 2 },
  curriculum: { enabled: true, startStep: 0, rampSteps: 1, finalFraction: 0.5, samplePerIdentity: 6 },
});

interface PlanView {
  version: number;
  step: number;
  pairCount: number;
  stats: { easy: number; semiHard: number; hard: number; pairs: number };
}

describe('miner service and curriculum (facenet up with the miner)', function () {
  this.timeout(300000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;
  before(async () => {
    t = tempDir('facenet-miner-');
    cluster = await startCluster(2, join(t.dir, 'ckpt'));
    await waitFor(async () => (await api<unknown>(cluster.url, 'GET', '/v1/miner')) !== null, 30000, 'the miner to register');
  });
  after(async () => {
    await cluster?.stop();
    t.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(cluster.logs.slice(-40).join('\n'));
  });

  it("GET /v1/miner keeps the miner's start time across heartbeats", async () => {
    const first = await api<{ startedAt: string }>(cluster.url, 'GET', '/v1/miner');
    await new Promise((r) => setTimeout(r, 4500)); // two heartbeats (2 s each)
    const later = await api<{ startedAt: string }>(cluster.url, 'GET', '/v1/miner');
    assert.equal(later.startedAt, first.startedAt);
  });

  it('publishes versioned plans that later steps are planned with', async () => {
    // Long enough that the miner (embedding ~240 images a checkpoint) has plans ready well before the end.
    const j = await api<JobView>(cluster.url, 'POST', '/v1/jobs', job(40));
    const done = await waitForState(cluster.url, j.id, ['completed'], 240000);
    const plan = await api<PlanView | null>(cluster.url, 'GET', `/v1/jobs/${j.id}/plan`);
    assert.ok(plan, 'a plan was published');
    assert.ok(plan.version >= 1 && plan.step % 4 === 0 && plan.step <= 40);
    assert.ok(Math.abs(plan.stats.easy + plan.stats.semiHard + plan.stats.hard - 1) < 1e-6);
    assert.ok(plan.stats.pairs > 0);
    const history = await api<{ step: number; planVersion?: number; minerLag?: number }[]>(cluster.url, 'GET', `/v1/jobs/${j.id}/history`);
    const planned = history.filter((h) => h.planVersion !== undefined);
    assert.ok(planned.length > 0, 'some steps used a plan');
    assert.ok(
      planned.every((h) => (h.minerLag ?? -1) >= 0),
      'a plan is never ahead of the step',
    );
    assert.ok(
      history.slice(0, 4).every((h) => h.planVersion === undefined),
      'no plan before the first checkpoint',
    );
    const view = await api<{ planVersion: number | null; minerLag: number | null }>(cluster.url, 'GET', `/v1/jobs/${done.id}`);
    assert.equal(typeof view.planVersion, 'number');
  });

  it('mines in a worker thread: the miner answers /healthz at once while it embeds and mines a checkpoint', async () => {
    const miner = await api<{ metrics: string }>(cluster.url, 'GET', '/v1/miner');
    const health = `${miner.metrics.startsWith('http') ? miner.metrics : `http://${miner.metrics}`}/healthz`;
    // inception-small at 96 px on a sample of 4,000 synthetic faces: seconds of decoding and
    // embedding even through ONNX Runtime (~1,800 img/s on two cores), then the mining scan.
    const spec = {
      ...job(4),
      dataset: { kind: 'synthetic', identities: 400, imagesPerIdentity: 10 },
      holdout: 0,
      evaluation: { enabled: false },
      train: { ...job(4).train, model: { architecture: 'inception-small', imageSize: 96 }, batch: { P: 6, K: 4 }, virtualShards: 2 },
      curriculum: { ...job(4).curriculum, samplePerIdentity: 10 },
    };
    const j = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec);
    let worst = 0;
    let plan: { timings: { embedMs: number; mineMs: number } } | null = null;
    await waitFor(
      async () => {
        const t0 = performance.now();
        const res = await fetch(health);
        worst = Math.max(worst, performance.now() - t0);
        assert.equal(res.status, 200);
        plan = await api<typeof plan>(cluster.url, 'GET', `/v1/jobs/${j.id}/plan`);
        return plan !== null;
      },
      240000,
      'a plan from the inception-small checkpoint',
    );
    const p = plan as unknown as { timings: { embedMs: number; mineMs: number } };
    const pass = p.timings.embedMs + p.timings.mineMs;
    assert.ok(pass > 2000, `the mining pass took ${pass.toFixed(0)} ms: too short to show anything`);
    assert.ok(worst < 500, `/healthz took up to ${worst.toFixed(0)} ms during a ${pass.toFixed(0)} ms mining pass`);
    await waitForState(cluster.url, j.id, ['completed'], 240000);
  });

  it('a job finishes when the miner is killed mid-job (uniform batches from then on)', async () => {
    const j = await api<JobView>(cluster.url, 'POST', '/v1/jobs', job(30));
    await waitFor(async () => (await api<JobView>(cluster.url, 'GET', `/v1/jobs/${j.id}`)).step >= 6, 120000, 'step 6');
    const miner = await api<{ pid: number } | null>(cluster.url, 'GET', '/v1/miner');
    process.kill(miner!.pid, 'SIGKILL');
    const done = await waitForState(cluster.url, j.id, ['completed'], 240000);
    assert.equal(done.step, 30);
    assert.equal(done.faults.length, 0, 'the miner is not on the training path');
  });
});
