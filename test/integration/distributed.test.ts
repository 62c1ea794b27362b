import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import IORedis from 'ioredis';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FolderSource, readCheckpoint, splitHoldout, SubsetSource, Trainer, TrainOptions } from '@facenet/core';
import { api, JobView, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { CLI, ORL, tempDir, useBackend } from '../helpers';

const run = promisify(execFile);

const TRAIN: TrainOptions = {
  model: { architecture: 'tiny', imageSize: 32 },
  batch: { P: 8, K: 5 },
  virtualShards: 4,
  optimizer: { name: 'adam', learningRate: 0.003 },
  seed: 3,
};
const spec = (train: Partial<TrainOptions>, extra: object = {}) => ({
  dataset: { kind: 'folder', path: ORL },
  holdout: 10,
  worldSize: 2,
  train: { ...TRAIN, ...train },
  ...extra,
});

async function weights(dir: string): Promise<Map<string, Float32Array>> {
  return (await readCheckpoint(dir)).tensors;
}

describe('distributed training (facenet up --workers 2, real Redis, gRPC and processes)', function () {
  this.timeout(300000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;

  before(async () => {
    await useBackend();
    t = tempDir('facenet-dist-');
    cluster = await startCluster(2, join(t.dir, 'checkpoints'));
  });
  after(async () => {
    await cluster?.stop();
    t.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(cluster.logs.slice(-40).join('\n'));
  });

  it('rejects a bad job spec with the path of each bad field', async () => {
    const err = await api(cluster.url, 'POST', '/v1/jobs', {
      dataset: { kind: 'folder', path: join(t.dir, 'none') },
      worldSize: 0,
      train: { batch: { P: 'x' } },
      extra: 1,
    }).catch((e: { status: number; data: { issues: { path: string }[] } }) => e);
    const e = err as { status: number; data: { issues: { path: string }[] } };
    assert.equal(e.status, 400);
    const paths = e.data.issues.map((i) => i.path);
    for (const p of ['worldSize', 'train.batch.P', '(root)']) assert.ok(paths.includes(p), `${p} in ${paths}`);
    const missing = await api(cluster.url, 'POST', '/v1/jobs', spec({}, { dataset: { kind: 'folder', path: join(t.dir, 'none') } })).catch(
      (x: { data: { issues: { path: string }[] } }) => x,
    );
    assert.deepEqual(
      (missing as { data: { issues: { path: string }[] } }).data.issues.map((i) => i.path),
      ['dataset.path'],
    );
    const doc = await api<{ openapi: string; components: { schemas: { JobSpec: { properties: object } } } }>(
      cluster.url,
      'GET',
      '/v1/openapi.json',
    );
    assert.equal(doc.openapi, '3.1.0');
    assert.ok('dataset' in doc.components.schemas.JobSpec.properties);
  });

  /** Runs one step of `train` on the cluster (W=2) and in one process; returns the worst weight difference and both weight sets. */
  async function oneStepBothWays(train: Partial<TrainOptions>, name: string) {
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec({ ...train, steps: 1, checkpointEvery: 1 }));
    const done = await waitForState(cluster.url, job.id, ['completed']);
    assert.equal(done.world.size, 2);
    const distributed = await weights(done.lastCheckpoint!.dir);
    const history = await api<{ loss: number; classificationLoss: number; classificationAccuracy: number }[]>(
      cluster.url,
      'GET',
      `/v1/jobs/${job.id}/history`,
    );

    const source = new FolderSource(ORL);
    const split = splitHoldout(source.index, 10, 3);
    const local = new Trainer(new SubsetSource(source, split.train), { ...TRAIN, ...train, steps: 1, checkpointDir: join(t.dir, name) });
    await local.run();
    const single = await weights(join(t.dir, name, 'step-000001'));
    local.dispose();
    let worst = 0;
    for (const [k, v] of single) {
      if (k.startsWith('slot:')) continue;
      const d = distributed.get(k)!;
      assert.ok(d, `${k} missing from the distributed checkpoint`);
      for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i]! - d[i]!));
    }
    // And the weights moved: this is not comparing two untouched initialisations.
    const init = new Trainer(new SubsetSource(source, split.train), { ...TRAIN, ...train, steps: 1 });
    const moved = async (name: string) => {
      const w0 = (await init.model.store.trainable.get(name)!.data()) as Float32Array;
      const w1 = distributed.get(`param:${name}`)!;
      return w0.reduce((m, x, i) => Math.max(m, Math.abs(x - w1[i]!)), 0);
    };
    return { worst, distributed, history, moved, done: () => init.dispose() };
  }

  it('one step on W=2 gives the weights of the one-process step on the same batch (1e-5)', async () => {
    const r = await oneStepBothWays({}, 'local');
    try {
      assert.ok(r.worst <= 1e-5, `max weight difference ${r.worst}`);
      assert.ok((await r.moved('embedding/w')) > 1e-6);
      assert.equal(r.history[0]!.classificationLoss, 0);
    } finally {
      r.done();
    }
  });

  it('classification beside the triplet loss (cosface): the same one step on W=2 and in one process, class weights included', async () => {
    const r = await oneStepBothWays({ classification: { head: 'cosface', mode: 'beside', weight: 1 } }, 'local-cls');
    try {
      assert.ok(r.worst <= 1e-5, `max weight difference ${r.worst}`);
      // ORL's training split: 30 people, one class each, embedding 128-D.
      assert.equal(r.distributed.get('param:classifier/weights')?.length, 128 * 30);
      assert.ok((await r.moved('classifier/weights')) > 1e-6, 'class weights were updated');
      assert.ok((await r.moved('embedding/w')) > 1e-6);
      const h = r.history[0]!;
      // Cosine logits with scale 30 over 30 classes start near ln(30) = 3.4, higher with the margin.
      assert.ok(h.classificationLoss > 2 && h.classificationLoss < 20, `classification loss ${h.classificationLoss}`);
      assert.ok(h.loss > 0, 'the triplet loss is still reported');
    } finally {
      r.done();
    }
    const bad = await api(cluster.url, 'POST', '/v1/jobs', spec({ classification: { mode: 'first' as never, warmupSteps: -1 } })).catch(
      (e: { data: { issues: { path: string }[] } }) => e,
    );
    assert.deepEqual(
      (bad as { data: { issues: { path: string }[] } }).data.issues.map((i) => i.path),
      ['train.classification.mode'],
    );
  });

  it('allreduce.compression fp16: ranks stay bit-identical (weight checksums every step) and the job completes', async () => {
    const job = await api<JobView>(
      cluster.url,
      'POST',
      '/v1/jobs',
      spec({ steps: 3, checkpointEvery: 3 }, { checksumEvery: 1, allreduce: { compression: 'fp16' } }),
    );
    const done = await waitForState(cluster.url, job.id, ['completed', 'failed']);
    assert.equal(done.state, 'completed', JSON.stringify(done));
    const bad = await api(cluster.url, 'POST', '/v1/jobs', spec({}, { allreduce: { compression: 'fp8' } })).catch(
      (e: { status: number; data: { issues: { path: string }[] } }) => e,
    );
    assert.deepEqual(
      (bad as { data: { issues: { path: string }[] } }).data.issues.map((i) => i.path),
      ['allreduce.compression'],
    );
  });

  it("allreduce.algorithm: the ring and recursive doubling train W=2 to bit-identical weights (one addition per element either way), each named in the workers' logs", async () => {
    const final = async (algorithm: string) => {
      const job = await api<JobView>(
        cluster.url,
        'POST',
        '/v1/jobs',
        spec({ steps: 3, checkpointEvery: 3 }, { checksumEvery: 1, allreduce: { algorithm } }),
      );
      const done = await waitForState(cluster.url, job.id, ['completed', 'failed']);
      assert.equal(done.state, 'completed', JSON.stringify(done));
      const lines = cluster.logs.filter((l) => l.includes(`job ${job.id} step 3 rank`));
      assert.equal(lines.length, 2, lines.join('\n'));
      for (const l of lines) assert.match(l, new RegExp(`allreduce \\d+ ms \\(${algorithm}, \\d+ KB sent\\)`));
      return weights(done.lastCheckpoint!.dir);
    };
    const ring = await final('ring');
    const doubling = await final('recursive-doubling');
    assert.deepEqual([...doubling.keys()], [...ring.keys()]);
    for (const [name, w] of ring) assert.deepEqual(doubling.get(name), w, name);
  });

  it('resuming from the step-N checkpoint reproduces the straight 2N-step run exactly', async () => {
    const straight = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec({ steps: 4, checkpointEvery: 2 }));
    const a = await waitForState(cluster.url, straight.id, ['completed']);
    const fork = await api<JobView>(cluster.url, 'POST', `/v1/jobs/${a.id}/fork`, { fromStep: 2 });
    assert.equal(fork.step, 2);
    const b = await waitForState(cluster.url, fork.id, ['completed']);
    assert.equal(b.step, 4);
    const wa = await weights(a.lastCheckpoint!.dir);
    const wb = await weights(b.lastCheckpoint!.dir);
    assert.notEqual(a.lastCheckpoint!.dir, b.lastCheckpoint!.dir);
    for (const [k, v] of wa) assert.deepEqual(wb.get(k), v, `${k} differs`);
  });

  it("keeps the workers' event loops free during long steps (heartbeats never lapse)", async () => {
    // inception-small at 96 px: seconds of compute per step, which would block a main thread.
    const j = await api<JobView>(
      cluster.url,
      'POST',
      '/v1/jobs',
      spec({ model: { architecture: 'inception-small', imageSize: 96 }, batch: { P: 9, K: 10 }, virtualShards: 2, steps: 2 }),
    );
    const redis = new IORedis();
    let minTtl = Infinity;
    let longest = 0;
    try {
      const ids = (await api<{ id: string }[]>(cluster.url, 'GET', '/v1/workers')).map((w) => w.id);
      for (;;) {
        const view = await api<JobView & { recent: { step: number }[] }>(cluster.url, 'GET', `/v1/jobs/${j.id}`);
        if (view.state === 'completed') break;
        for (const id of ids) minTtl = Math.min(minTtl, await redis.pttl(`${cluster.prefix}:worker:${id}`));
        await new Promise((r) => setTimeout(r, 100));
      }
      const history = await api<{ timings: { computeMs: number }[] }[]>(cluster.url, 'GET', `/v1/jobs/${j.id}/history`);
      longest = Math.max(...history.flatMap((h) => h.timings.map((t) => t.computeMs)));
    } finally {
      redis.disconnect();
    }
    assert.ok(longest > 2500, `a step computed for ${longest} ms (long enough to show a blocked loop)`);
    // Registrations live 6 s and are refreshed every 2 s: above 3 s means no beat was late by a second.
    assert.ok(minTtl > 3000, `lowest registration TTL seen ${minTtl} ms`);
  });

  it('end to end with the CLI: loss goes down, checkpoints are listed, pause/resume/cancel work', async () => {
    const specFile = join(t.dir, 'job.json');
    writeFileSync(specFile, JSON.stringify(spec({ steps: 40, checkpointEvery: 10 })));
    const facenet = (...args: string[]) => run(process.execPath, [CLI, 'jobs', ...args, '--api', cluster.url]);
    const id = /created (\S+)/.exec((await facenet('create', specFile)).stdout)![1]!;
    await waitFor(async () => (await api<JobView>(cluster.url, 'GET', `/v1/jobs/${id}`)).step >= 5, 120000, 'step 5');
    await facenet('pause', id);
    const paused = await waitForState(cluster.url, id, ['paused']);
    assert.ok(paused.step < 40, `paused at ${paused.step}`);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await api<JobView>(cluster.url, 'GET', `/v1/jobs/${id}`)).step, paused.step, 'no step runs while paused');
    await facenet('resume', id);
    const done = await waitForState(cluster.url, id, ['completed'], 240000);
    assert.equal(done.step, 40);
    assert.equal((JSON.parse((await facenet('get', id, '--json')).stdout) as JobView).state, 'completed');

    const list = (await facenet('checkpoints', id)).stdout;
    for (const s of [10, 20, 30, 40]) assert.match(list, new RegExp(`step\\s+${s}\\s`));
    assert.deepEqual(readdirSync(join(t.dir, 'checkpoints', id)).sort(), ['step-000010', 'step-000020', 'step-000030', 'step-000040']);

    const losses = (await api<{ step: number; loss: number }[]>(cluster.url, 'GET', `/v1/jobs/${id}/history`)).map((h) => h.loss);
    assert.equal(losses.length, 40);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(losses.slice(0, 5));
    const last = mean(losses.slice(-5));
    assert.ok(last < 0.8 * first, `loss of the first five steps ${first.toFixed(4)}, of the last five ${last.toFixed(4)}`);

    const other = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec({ steps: 500 }));
    await waitFor(async () => (await api<JobView>(cluster.url, 'GET', `/v1/jobs/${other.id}`)).step >= 1, 60000, 'first step');
    await facenet('cancel', other.id);
    const cancelled = await waitForState(cluster.url, other.id, ['cancelled']);
    assert.ok(cancelled.step < 500);
  });
});
