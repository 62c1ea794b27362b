import { strict as assert } from 'node:assert';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { FolderSource, readCheckpoint, splitHoldout, SubsetSource, Trainer, TrainOptions } from '@facenet/core';
import type { WorkerInfo } from '@facenet/protocol';
import { api, JobView, spawnWorker, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { ORL, tempDir, useBackend } from '../helpers';
import { needSoftwareGpu } from '../requirements';

const TRAIN: TrainOptions = {
  model: { architecture: 'tiny', imageSize: 32 },
  batch: { P: 8, K: 5 },
  virtualShards: 4,
  // Momentum, not Adam: Adam's first steps move every weight by about the learning rate whatever
  // the gradient's size, so float noise in a near-zero gradient becomes a full step either way.
  optimizer: { name: 'momentum', learningRate: 0.05 },
  seed: 3,
  steps: 3,
  checkpointEvery: 3,
};

/** Where a webgpu world may differ from the cpu backend after 3 steps (gradients agree to ~1e-5 relative). */
const WEIGHT_TOLERANCE = 1e-4;

describe('webgpu workers (facenet up --backend webgpu on SwiftShader, W=2, real Redis, gRPC, processes)', function () {
  this.timeout(600_000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster | undefined;

  before(async function () {
    const env = needSoftwareGpu(this);
    await useBackend();
    t = tempDir('facenet-webgpu-');
    cluster = await startCluster(2, join(t.dir, 'checkpoints'), { VK_ICD_FILENAMES: env.VK_ICD_FILENAMES! }, ['--backend', 'webgpu']);
  });
  after(async () => {
    await cluster?.stop();
    t?.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && cluster) console.log(cluster.logs.slice(-60).join('\n'));
  });

  it('workers register their GPU: backend webgpu, the software adapter, its buffer limits', async () => {
    const workers = await api<WorkerInfo[]>(cluster!.url, 'GET', '/v1/workers');
    assert.equal(workers.length, 2);
    for (const w of workers) {
      assert.equal(w.backend, 'webgpu');
      assert.equal(w.gpu?.software, true, JSON.stringify(w.gpu));
      assert.match(w.gpu?.description ?? '', /SwiftShader/);
      assert.ok((w.gpu?.maxStorageBufferBindingSize ?? 0) >= 128 * 2 ** 20);
    }
  });

  it(`a job completes with no fault, its weights within ${WEIGHT_TOLERANCE} of the same steps in one process on the cpu backend`, async () => {
    await trainsLikeCpu(cluster!, t.dir, 'cpu');
  });
});

/** Runs TRAIN on the cluster (W=2) and in this process on the cpu backend; asserts no fault and weights within WEIGHT_TOLERANCE. */
async function trainsLikeCpu(cluster: TestCluster, dir: string, name: string): Promise<void> {
  const spec = { dataset: { kind: 'folder', path: ORL }, holdout: 10, worldSize: 2, train: TRAIN };
  const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec);
  const done = await waitForState(cluster.url, job.id, ['completed', 'failed'], 480_000);
  assert.equal(done.state, 'completed', JSON.stringify(done));
  assert.equal(done.faults.length, 0, JSON.stringify(done.faults));
  assert.equal(done.world.size, 2);
  const onGpu = (await readCheckpoint(done.lastCheckpoint!.dir)).tensors;

  const source = new FolderSource(ORL);
  const split = splitHoldout(source.index, 10, 3);
  const local = new Trainer(new SubsetSource(source, split.train), { ...TRAIN, checkpointDir: join(dir, name) });
  await local.run();
  local.dispose();
  const onCpu = (await readCheckpoint(join(dir, name, 'step-000003'))).tensors;
  let worst = 0;
  let moved = 0;
  for (const [k, v] of onCpu) {
    if (k.startsWith('slot:')) continue;
    const g = onGpu.get(k)!;
    assert.ok(g, `${k} missing from the webgpu checkpoint`);
    for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i]! - g[i]!));
  }
  const w0 = new Trainer(new SubsetSource(source, split.train), { ...TRAIN });
  const init = (await w0.model.store.trainable.get('embedding/w')!.data()) as Float32Array;
  w0.dispose();
  onGpu.get('param:embedding/w')!.forEach((x, i) => (moved = Math.max(moved, Math.abs(x - init[i]!))));
  assert.ok(moved > 1e-4, `the weights moved (${moved}): this compares trained weights, not two initialisations`);
  if (process.env.FACENET_TEST_VERBOSE) console.log({ worst, moved });
  assert.ok(worst <= WEIGHT_TOLERANCE, `largest weight difference webgpu W=2 vs cpu one process: ${worst}`);
}

describe('a world of one webgpu rank and one wasm rank', function () {
  this.timeout(600_000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster | undefined;
  let wasmWorker: ChildProcess | undefined;

  before(async function () {
    const env = needSoftwareGpu(this);
    await useBackend();
    t = tempDir('facenet-mixed-');
    cluster = await startCluster(1, join(t.dir, 'checkpoints'), { VK_ICD_FILENAMES: env.VK_ICD_FILENAMES! }, ['--backend', 'webgpu']);
    wasmWorker = spawnWorker(cluster, { FACENET_BACKEND: 'wasm' });
    await waitFor(
      async () => (await api<WorkerInfo[]>(cluster!.url, 'GET', '/v1/workers')).length === 2,
      60_000,
      'the wasm worker to register',
    );
  });
  after(async () => {
    wasmWorker?.kill('SIGTERM');
    await cluster?.stop();
    t?.cleanup();
  });

  it('trains correctly: the float32 gradients the two backends sum agree, so the weights match the cpu run', async () => {
    const backends = (await api<WorkerInfo[]>(cluster!.url, 'GET', '/v1/workers')).map((w) => w.backend).sort();
    assert.deepEqual(backends, ['wasm', 'webgpu']);
    await trainsLikeCpu(cluster!, t.dir, 'cpu-mixed');
  });
});
