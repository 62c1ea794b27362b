import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { ARCHITECTURES, ArchitectureName, CheckpointManifest, EmbeddingModel, exportModel, ExportMetadata, tf } from '@facenet/core';
import { tempDir, useBackend } from '../helpers';

/** A manifest of the fields an export reads (the rest of a checkpoint plays no part). */
function manifestOf(model: EmbeddingModel): CheckpointManifest {
  return {
    format: 'facenet-checkpoint/1',
    createdAt: '2026-12-05T00:00:00.000Z',
    model: model.config,
    step: 7,
    optimizer: { config: {} as CheckpointManifest['optimizer']['config'], iterations: 7 },
    rng: { seed: 1 },
    preprocessing: { cropFraction: 0.5 },
    tensors: [],
    weights: { file: 'weights.bin', bytes: 0, sha256: 'abc' },
  };
}

/** Moving statistics and betas away from their initial 0 / 1, so folding batch norm into the convs is really exercised. */
function perturbState(model: EmbeddingModel): void {
  let k = 0;
  for (const [name, v] of [...model.store.state, ...model.store.trainable]) {
    if (!/moving_|beta|gamma/.test(name)) continue;
    const noise = tf.randomUniform(v.shape, 0, 1, 'float32', ++k);
    v.assign(name.endsWith('moving_variance') || name.endsWith('gamma') ? tf.add(noise, 0.5) : tf.sub(noise, 0.5));
    noise.dispose();
  }
}

describe('export: ONNX and TensorFlow.js graphs give the model’s own embeddings', function () {
  this.timeout(120_000);
  before(useBackend);

  const configs: { architecture: ArchitectureName; imageSize: number; width: number }[] = [
    { architecture: 'tiny', imageSize: 32, width: 1 },
    { architecture: 'resnet-small', imageSize: 40, width: 0.25 },
    { architecture: 'inception-small', imageSize: 48, width: 0.25 },
  ];
  it('covers every architecture in the zoo', () => {
    assert.deepEqual(configs.map((c) => c.architecture).sort(), [...ARCHITECTURES].sort());
  });

  for (const cfg of configs) {
    it(`${cfg.architecture} ${cfg.imageSize}px: onnxruntime-node and tf.loadGraphModel within 1e-4 of EmbeddingModel.embed`, async () => {
      const model = new EmbeddingModel({ ...cfg, embeddingDim: 16, seed: 3 });
      const { dir, cleanup } = tempDir();
      try {
        perturbState(model);
        const images = tf.randomUniform([5, cfg.imageSize, cfg.imageSize, 3], -1, 1, 'float32', 11) as tf.Tensor4D;
        const expected = model.embed(images);
        const want = expected.dataSync();

        const onnxDir = join(dir, 'onnx');
        const r = await exportModel(model, manifestOf(model), 'onnx', onnxDir);
        assert.deepEqual(r.files.map((f) => f.name).sort(), ['facenet.json', 'model.onnx']);
        const session = await ort.InferenceSession.create(join(onnxDir, 'model.onnx'));
        assert.deepEqual(session.inputNames, ['input']);
        assert.deepEqual(session.outputNames, ['embeddings']);
        const out = await session.run({ input: new ort.Tensor('float32', images.dataSync() as Float32Array, images.shape) });
        const got = out.embeddings!.data as Float32Array;
        assert.deepEqual(out.embeddings!.dims, [5, 16]);
        const onnxErr = Math.max(...Array.from(got, (v, i) => Math.abs(v - (want[i] as number))));
        assert.ok(onnxErr <= 1e-4, `onnx max abs difference ${onnxErr}`);
        const meta = JSON.parse(readFileSync(join(onnxDir, 'facenet.json'), 'utf8')) as ExportMetadata;
        assert.equal(meta.preprocessing.cropFraction, 0.5);
        assert.deepEqual(meta.input.shape, ['N', cfg.imageSize, cfg.imageSize, 3]);
        await session.release();

        const tfjsDir = join(dir, 'tfjs');
        await exportModel(model, manifestOf(model), 'tfjs', tfjsDir);
        const json = JSON.parse(readFileSync(join(tfjsDir, 'model.json'), 'utf8'));
        const weights = readFileSync(join(tfjsDir, json.weightsManifest[0].paths[0]));
        const graphModel = await tf.loadGraphModel(
          tf.io.fromMemory({
            modelTopology: json.modelTopology,
            weightSpecs: json.weightsManifest[0].weights,
            weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
            format: json.format,
            userDefinedMetadata: json.userDefinedMetadata,
          }),
        );
        const y = graphModel.execute(images) as tf.Tensor;
        const tfjsErr = tf.tidy(() => tf.max(tf.abs(tf.sub(y, expected))).dataSync()[0] as number);
        assert.deepEqual(y.shape, [5, 16]);
        assert.ok(tfjsErr <= 1e-4, `tfjs max abs difference ${tfjsErr}`);
        assert.equal((graphModel.metadata as { facenet: ExportMetadata }).facenet.checkpoint.step, 7);
        tf.dispose([y, images, expected]);
        graphModel.dispose();
      } finally {
        model.dispose();
        cleanup();
      }
    });
  }
});
