import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createEmbedder,
  embedImages,
  EmbeddingModel,
  ENGINE_AGREEMENT_TOLERANCE,
  exportedOnnxEmbedder,
  InferenceError,
  inferenceSettings,
  listImages,
  FilesSource,
  tf,
  tfjsEmbedder,
} from '@facenet/core';
import { ORL, tempDir, useBackend } from '../helpers';

/** Turns of the event loop (setImmediate) that run while `work` is pending. */
async function loopTurnsDuring(work: Promise<unknown>): Promise<number> {
  let turns = 0;
  let done = false;
  const spin = () => {
    if (done) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  await work;
  done = true;
  return turns;
}

describe('inference engines: ONNX Runtime on its own thread, checked against TensorFlow.js', function () {
  this.timeout(120_000);
  before(useBackend);

  it('auto picks ONNX Runtime on a CPU backend, and its embeddings of real faces equal TensorFlow.js’s within the tolerance', async () => {
    const model = new EmbeddingModel({ architecture: 'inception-small', imageSize: 48, width: 0.25, embeddingDim: 32, seed: 5 });
    const lines: string[] = [];
    const ort = await createEmbedder(model, { engine: 'auto', threads: 1, log: (l) => lines.push(l) });
    try {
      assert.equal(ort.engine, 'onnxruntime', lines.join('\n'));
      assert.match(lines.join('\n'), /ONNX Runtime, 1 thread \(agrees with TensorFlow\.js to /);
      const files = listImages(ORL).slice(0, 40);
      const source = new FilesSource(files, 1);
      const a = await embedImages(ort, source, files, { batchSize: 16 });
      const b = await embedImages(tfjsEmbedder(model), source, files, { batchSize: 16 });
      assert.equal(a.ok.filter(Boolean).length, files.length);
      let worst = 0;
      for (let i = 0; i < a.embeddings.length; i++)
        worst = Math.max(worst, Math.abs((a.embeddings[i] as number) - (b.embeddings[i] as number)));
      assert.ok(worst <= ENGINE_AGREEMENT_TOLERANCE, `max |ORT - tfjs| = ${worst}`);
      const norm = Math.hypot(...a.embeddings.subarray(0, 32));
      assert.ok(Math.abs(norm - 1) < 1e-4, `embeddings are unit length (${norm})`);
    } finally {
      await ort.dispose();
      model.dispose();
    }
  });

  it('ONNX Runtime leaves the event loop running while it embeds; TensorFlow.js on wasm/cpu holds it', async () => {
    const model = new EmbeddingModel({ architecture: 'inception-small', imageSize: 64, seed: 2 });
    const ort = await createEmbedder(model, { engine: 'onnxruntime', threads: 1 });
    const tfjs = tfjsEmbedder(model);
    try {
      const pixels = () => new Float32Array(64 * 64 * 64 * 3).fill(0.1);
      const onThread = await loopTurnsDuring(ort.embed(pixels(), 64));
      const inline = await loopTurnsDuring(tfjs.embed(pixels(), 64));
      // 64 images take >= 30 ms on one ORT thread; the loop turns in microseconds meanwhile. The
      // tfjs pass runs to completion before its promise's first await returns control.
      assert.ok(onThread >= 10, `event-loop turns while ORT embedded: ${onThread}`);
      assert.ok(inline <= 2, `event-loop turns while tfjs embedded: ${inline}`);
    } finally {
      await ort.dispose();
      model.dispose();
    }
  });

  it('a model on which the engines disagree (a NaN weight) falls back to TensorFlow.js under auto, saying why, and fails under onnxruntime', async () => {
    const model = new EmbeddingModel({ architecture: 'tiny', imageSize: 32, embeddingDim: 16, seed: 1 });
    const [name, v] = [...model.store.trainable][0] as [string, tf.Variable];
    v.assign(tf.fill(v.shape, NaN));
    const lines: string[] = [];
    const auto = await createEmbedder(model, { engine: 'auto', threads: 1, log: (l) => lines.push(l) });
    assert.equal(auto.engine, 'tfjs', `${name}: ${lines.join('\n')}`);
    assert.match(lines.join('\n'), /TensorFlow\.js \(ONNX Runtime and TensorFlow\.js disagree on this model by NaN/);
    await assert.rejects(createEmbedder(model, { engine: 'onnxruntime', threads: 1 }), InferenceError);
    model.dispose();
  });

  it('settings: FACENET_INFERENCE_ENGINE and FACENET_INFERENCE_THREADS are read, and a bad value names the variable', () => {
    assert.deepEqual(inferenceSettings({}, { FACENET_INFERENCE_ENGINE: 'tfjs', FACENET_INFERENCE_THREADS: '3' }), {
      engine: 'tfjs',
      threads: 3,
    });
    assert.throws(
      () => inferenceSettings({}, { FACENET_INFERENCE_ENGINE: 'tensorrt' }),
      /FACENET_INFERENCE_ENGINE: "tensorrt" is not one of auto, onnxruntime, tfjs/,
    );
    for (const bad of ['0', '1.5', 'four', '-2', '1e9'])
      assert.throws(() => inferenceSettings({}, { FACENET_INFERENCE_THREADS: bad }), /FACENET_INFERENCE_THREADS/, bad);
  });

  it('an ONNX export that is not one (garbage model bytes, bad metadata) is an InferenceError, and the process lives on', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const meta = {
        format: 'facenet-export/1',
        model: { architecture: 'tiny', imageSize: 32, embeddingDim: 16 },
        preprocessing: { cropFraction: 1 },
      };
      const garbage = join(dir, 'garbage');
      mkdirSync(garbage);
      writeFileSync(join(garbage, 'facenet.json'), JSON.stringify(meta));
      writeFileSync(join(garbage, 'model.onnx'), Buffer.from('not a protobuf at all \x00\xff\x08\x12'));
      await assert.rejects(
        exportedOnnxEmbedder(garbage, { threads: 1 }),
        (e: Error) => e instanceof InferenceError && /cannot load the model/.test(e.message),
      );
      const huge = join(dir, 'huge');
      mkdirSync(huge);
      writeFileSync(join(huge, 'facenet.json'), JSON.stringify({ ...meta, model: { ...meta.model, imageSize: 1e9 } }));
      writeFileSync(join(huge, 'model.onnx'), '');
      await assert.rejects(exportedOnnxEmbedder(huge, { threads: 1 }), /facenet.json: model.imageSize: Too big/);
      await assert.rejects(exportedOnnxEmbedder(join(dir, 'absent'), { threads: 1 }), /is not a facenet export \(no readable facenet.json/);
    } finally {
      cleanup();
    }
  });
});
