import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { readCheckpoint } from '@facenet/core';
import { api, JobView, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { ORL, tempDir } from '../helpers';
import { smallFilesystem } from '../requirements';

const job = (train: object, extra: object = {}) => ({
  dataset: { kind: 'folder', path: ORL },
  holdout: 10,
  worldSize: 2,
  checksumEvery: 1,
  ...extra,
  train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 8, K: 4 }, virtualShards: 2, seed: 3, ...train },
});

/** Jobs that cannot be made durable, or cannot learn, on real processes (facenet up, W=2). */
describe('durability and jobs that cannot train', function () {
  this.timeout(300000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;
  let fs: ReturnType<typeof smallFilesystem> | undefined;

  before(async function () {
    t = tempDir('facenet-durable-');
    const root = join(t.dir, 'ckpt');
    mkdirSync(root);
    // A 128 KB filesystem: a tiny-net checkpoint (~264 KB with its Adam slots) never fits.
    fs = smallFilesystem(this, root, '128k');
    // Undecodable "images" in a people folder: admitted (admission does not decode), never trainable.
    const junk = join(t.dir, 'data', 'junk');
    for (let p = 0; p < 8; p++) {
      mkdirSync(join(junk, `person${p}`), { recursive: true });
      for (let i = 0; i < 3; i++) writeFileSync(join(junk, `person${p}`, `${i}.jpg`), `not a jpeg ${p} ${i}`);
    }
    cluster = await startCluster(2, root, { FACENET_DATA_ROOTS: [join(t.dir, 'data'), dirname(ORL)].join(':') }, [
      '--no-miner',
      '--no-evaluator',
    ]);
  });
  after(async () => {
    await cluster?.stop();
    fs?.unmount();
    t?.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(cluster.logs.slice(-60).join('\n'));
  });

  it('a full checkpoint disk pauses the job naming the path (no world rebuilt), and "completed" waits for the final checkpoint on disk', async () => {
    const created = await api<JobView>(cluster.url, 'POST', '/v1/jobs', job({ steps: 6, checkpointEvery: 3 }));
    // Step 3's checkpoint is refused: the step stands (every rank applied it), the job pauses.
    let j = await waitForState(cluster.url, created.id, ['paused', 'completed', 'failed'], 120000);
    assert.equal(j.state, 'paused', `state ${j.state}: ${j.error}`);
    assert.equal(j.step, 3);
    assert.match(j.error ?? '', /storage fault: checkpoint of step 3 refused at .*step-000003.*ENOSPC/);
    assert.equal(j.world.generation, 1, 'the world was not rebuilt');
    assert.deepEqual(
      j.faults.map((f) => [f.kind, f.inStep, f.errorClass]),
      [['storage', 3, 'StorageError']],
    );
    assert.equal(j.lastCheckpoint, null);
    const metrics = await (await fetch(`${cluster.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`facenet_job_storage_faults_total\\{job_id="${j.id}"\\} 1`));
    assert.doesNotMatch(metrics, new RegExp(`facenet_job_faults_total\\{job_id="${j.id}"\\} [1-9]`), 'not counted as a worker fault');

    // Resumed with the disk still full: it trains on from the weights the workers kept (no steps
    // lost), and its final checkpoint is refused too: paused at 6, not completed.
    await api(cluster.url, 'POST', `/v1/jobs/${j.id}/resume`);
    await waitFor(async () => (await api<JobView>(cluster.url, 'GET', `/v1/jobs/${j.id}`)).step === 6, 120000, 'steps 4-6');
    j = await waitForState(cluster.url, created.id, ['paused', 'completed', 'failed'], 120000);
    assert.equal(j.state, 'paused', `state ${j.state}: ${j.error}`);
    assert.equal(j.step, 6);
    assert.deepEqual(
      j.faults.map((f) => [f.kind, f.inStep, f.stepsLost]),
      [
        ['storage', 3, 0],
        ['storage', 6, 0],
      ],
    );

    // Space freed: the resumed job writes its final checkpoint from a holder's weights, then completes.
    fs!.resize('64m');
    await api(cluster.url, 'POST', `/v1/jobs/${j.id}/resume`);
    j = await waitForState(cluster.url, created.id, ['completed', 'failed'], 120000);
    assert.equal(j.state, 'completed', j.error);
    assert.equal(j.lastCheckpoint?.step, 6);
    const ckpt = await readCheckpoint(j.lastCheckpoint!.dir); // verified: sizes and sha256
    assert.equal(ckpt.manifest.step, 6);
    assert.ok(existsSync(j.lastCheckpoint!.dir));
  });

  it('after maxStorageFaults refusals since the last durable checkpoint the job fails, saying why', async () => {
    for (const f of readdirSync(cluster.checkpointRoot)) rmSync(join(cluster.checkpointRoot, f), { recursive: true }); // a tmpfs cannot shrink below its use
    fs!.resize('128k');
    const created = await api<JobView>(cluster.url, 'POST', '/v1/jobs', job({ steps: 9, checkpointEvery: 1 }));
    for (let i = 0; i < 2; i++) {
      await waitForState(cluster.url, created.id, ['paused'], 120000);
      await api(cluster.url, 'POST', `/v1/jobs/${created.id}/resume`);
    }
    const j = await waitForState(cluster.url, created.id, ['failed'], 120000);
    assert.match(j.error ?? '', /3 checkpoints refused by storage since the last durable one/);
    assert.equal(j.faults.filter((f) => f.kind === 'storage').length, 3);
  });

  it('refuses at POST a job whose virtual shards cannot form triplets, naming the fields', async () => {
    const res = await fetch(`${cluster.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(job({ batch: { P: 12, K: 4 }, virtualShards: 12, steps: 5 }, { worldSize: 2 })),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { issues: { path: string; message: string }[] };
    assert.ok(
      body.issues.some((i) => i.path === 'train.virtualShards' && /P >= 24/.test(i.message)),
      JSON.stringify(body.issues),
    );
  });

  it('fails a job that formed no triplet for maxStepsWithoutTriplets steps instead of "completing" it', async () => {
    const fs2 = fs!;
    fs2.resize('64m');
    const spec = {
      ...job({ steps: 30, checkpointEvery: 0 }, { maxStepsWithoutTriplets: 3 }),
      dataset: { kind: 'folder', path: join(t.dir, 'data', 'junk') },
      holdout: 0,
    };
    const created = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec);
    const j = await waitForState(cluster.url, created.id, ['failed', 'completed'], 120000);
    assert.equal(j.state, 'failed');
    assert.match(j.error ?? '', /no triplet formed in the last 3 steps \(maxStepsWithoutTriplets\)/);
    assert.equal(j.step, 3);
  });
});
