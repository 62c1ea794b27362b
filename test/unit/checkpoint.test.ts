import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CheckpointError,
  EmbeddingModel,
  loadModel,
  readCheckpoint,
  resolveCheckpointDir,
  SyntheticSource,
  tf,
  Trainer,
  writeCheckpoint,
} from '@facenet/core';
import { tempDir, useBackend } from '../helpers';

async function weightsOf(model: EmbeddingModel): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [k, v] of [...model.store.trainable, ...model.store.state]) out.set(k, (await v.data()) as Float32Array);
  return out;
}

describe('checkpoints', function () {
  this.timeout(120000);
  before(useBackend);
  let t: ReturnType<typeof tempDir>;
  beforeEach(() => (t = tempDir()));
  afterEach(() => t.cleanup());

  it('round-trips weights and leaves no temporary folder', async () => {
    const m = new EmbeddingModel({ architecture: 'tiny', imageSize: 32, seed: 5 });
    const dir = join(t.dir, 'run', 'step-000001');
    await writeCheckpoint(dir, m, undefined, { step: 1, seed: 5 });
    assert.deepEqual(readdirSync(join(t.dir, 'run')), ['step-000001']);
    assert.equal(resolveCheckpointDir(join(t.dir, 'run')), dir);
    const { model } = await loadModel(dir);
    assert.deepEqual(await weightsOf(model), await weightsOf(m));
    m.dispose();
    model.dispose();
  });

  it('treats the manifest as untrusted: no file outside the folder, no non-finite weights, no malformed entries', async () => {
    const m = new EmbeddingModel({ architecture: 'tiny', imageSize: 32 });
    const dir = join(t.dir, 'untrusted');
    await writeCheckpoint(dir, m, undefined, { step: 0, seed: 1 });
    m.dispose();
    const path = join(dir, 'manifest.json');
    const original = readFileSync(path, 'utf8');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const rewrite = (edit: (mf: Record<string, any>) => void) => {
      const mf = JSON.parse(original) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      edit(mf);
      writeFileSync(path, JSON.stringify(mf));
    };
    rewrite((mf) => {
      mf.weights.file = '../../../../etc/passwd';
    });
    await assert.rejects(
      readCheckpoint(dir),
      (e: unknown) => e instanceof CheckpointError && /weights\.file must name a file inside/.test(e.message),
    );
    rewrite((mf) => {
      mf.tensors[0].offset = -5;
    });
    await assert.rejects(readCheckpoint(dir), (e: unknown) => e instanceof CheckpointError && /malformed tensor entry/.test(e.message));
    rewrite((mf) => {
      delete mf.optimizer;
    });
    await assert.rejects(readCheckpoint(dir), (e: unknown) => e instanceof CheckpointError && /optimizer is missing/.test(e.message));
    // NaN weights with a recomputed sha256: the file is intact, its numbers are not.
    const weights = readFileSync(join(dir, 'weights.bin'));
    weights.writeFloatLE(Number.NaN, 8);
    writeFileSync(join(dir, 'weights.bin'), weights);
    rewrite((mf) => {
      mf.weights.sha256 = createHash('sha256').update(weights).digest('hex');
    });
    await assert.rejects(
      loadModel(dir),
      (e: unknown) => e instanceof CheckpointError && /non-finite value \(NaN at element/.test(e.message),
    );
  });

  it('rejects a corrupt weights file and a mismatched architecture with clear errors', async () => {
    const m = new EmbeddingModel({ architecture: 'tiny', imageSize: 32 });
    const dir = join(t.dir, 'c');
    await writeCheckpoint(dir, m, undefined, { step: 0, seed: 1 });
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    const other = new EmbeddingModel({ architecture: 'resnet-small', imageSize: 32 });
    const ckpt = await readCheckpoint(dir);
    const { restoreCheckpoint } = await import('@facenet/core');
    assert.throws(
      () => restoreCheckpoint(ckpt, other, undefined, dir),
      (e: unknown) => e instanceof CheckpointError && /has no param/.test(e.message),
    );
    const w = readFileSync(join(dir, 'weights.bin'));
    w[100] = (w[100]! + 1) % 256;
    writeFileSync(join(dir, 'weights.bin'), w);
    await assert.rejects(loadModel(dir), (e: unknown) => e instanceof CheckpointError && /corrupt/.test(e.message));
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...manifest, format: 'other/9' }));
    await assert.rejects(loadModel(dir), /format 'other\/9'/);
    await assert.rejects(loadModel(join(t.dir, 'missing')), /no manifest.json/);
    m.dispose();
    other.dispose();
  });

  it('resuming from step N reproduces the uninterrupted 2N-step run exactly', async () => {
    const source = new SyntheticSource({ identities: 12, imagesPerIdentity: 6 });
    const opts = {
      model: { architecture: 'tiny' as const, imageSize: 24 },
      batch: { P: 4, K: 4 },
      steps: 6,
      virtualShards: 2,
      optimizer: { name: 'adam' as const },
    };
    const straight = new Trainer(source, { ...opts, checkpointDir: join(t.dir, 'a'), checkpointEvery: 3 });
    await straight.run();
    const resumed = await Trainer.resume(join(t.dir, 'a', 'step-000003'), source, { checkpointDir: join(t.dir, 'b') });
    assert.equal(resumed.step, 3);
    await resumed.run();
    const a = await weightsOf(straight.model);
    const b = await weightsOf(resumed.model);
    for (const [k, v] of a) assert.deepEqual(b.get(k), v, `variable ${k} differs after resume`);
    for (const [k, v] of straight.optimizer.slots)
      assert.deepEqual(await resumed.optimizer.slots.get(k)?.data(), await v.data(), `slot ${k}`);
    straight.dispose();
    resumed.dispose();
  });

  it('resumes a checkpoint written before the online selection was renamed (training.mining)', async () => {
    const source = new SyntheticSource({ identities: 12, imagesPerIdentity: 6 });
    const trainer = new Trainer(source, {
      model: { architecture: 'tiny', imageSize: 24 },
      batch: { P: 4, K: 4 },
      steps: 1,
      selection: 'batch-hard',
      checkpointDir: t.dir,
    });
    await trainer.run();
    trainer.dispose();
    const dir = join(t.dir, 'step-000001');
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { training: Record<string, unknown> };
    manifest.training.mining = manifest.training.selection;
    delete manifest.training.selection;
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    const resumed = await Trainer.resume(dir, source);
    assert.equal(resumed.config.selection, 'batch-hard');
    resumed.dispose();
  });

  it('keeps the tensor count flat across training steps', async () => {
    const source = new SyntheticSource({ identities: 8, imagesPerIdentity: 4 });
    const trainer = new Trainer(source, {
      model: { architecture: 'tiny', imageSize: 24 },
      batch: { P: 4, K: 3 },
      steps: 8,
      virtualShards: 2,
    });
    await trainer.run({}, undefined, 2); // optimizer slots are created on the first step
    const before = tf.memory().numTensors;
    await trainer.run({}, undefined, 8);
    assert.equal(tf.memory().numTensors, before);
    trainer.dispose();
  });
});
