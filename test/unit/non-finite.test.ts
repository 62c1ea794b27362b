import { strict as assert } from 'node:assert';
import { applyUpdateGuarded, checkFiniteVector, computeShardGradients, EmbeddingModel, NonFiniteError, Optimizer, tf } from '@facenet/core';
import { useBackend } from '../helpers';

function snapshot(model: EmbeddingModel, optimizer: Optimizer): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [n, v] of [...model.store.trainable, ...model.store.state, ...optimizer.slots]) out.set(n, v.dataSync() as Float32Array);
  return out;
}

describe('non-finite guard', () => {
  before(() => useBackend());

  it('names NaN or Inf in a reduced vector as gradients, batch-norm statistics or loss (the step statistics are its last 9 elements)', () => {
    const v = new Float32Array(20);
    checkFiniteVector(v, 4);
    v[3] = NaN;
    assert.throws(
      () => checkFiniteVector(v, 4),
      (e: NonFiniteError) => e instanceof NonFiniteError && e.what === 'gradients' && e.step === 4 && /step 5/.test(e.message),
    );
    v[3] = 0;
    v[15] = Infinity;
    assert.throws(
      () => checkFiniteVector(v, 4),
      (e: NonFiniteError) => e.what === 'loss',
    );
    v[15] = 0;
    v[8] = NaN; // gradients end at 6, batch-norm statistics run 6-10
    assert.throws(
      () => checkFiniteVector(v, 4, 6),
      (e: NonFiniteError) => e.what === 'batch-norm statistics',
    );
    assert.throws(
      () => checkFiniteVector(v, 4, 9),
      (e: NonFiniteError) => e.what === 'gradients',
    );
  });

  it('an update that makes weights non-finite leaves weights, statistics and optimizer slots exactly as before', async () => {
    const model = new EmbeddingModel({ architecture: 'tiny', imageSize: 24, seed: 3 });
    const optimizer = new Optimizer({ name: 'adam', learningRate: 1e-3 });
    const n = 8;
    const images = Float32Array.from({ length: n * 24 * 24 * 3 }, (_, i) => Math.sin(i));
    const labels = Int32Array.from({ length: n }, (_, i) => i % 4);
    const before = tf.memory().numTensors;
    const good = computeShardGradients(model, { images, labels, count: n }, 'semi-hard', 0.2);
    await applyUpdateGuarded(model, optimizer, good, 1, 1e-3, 0.99, 0); // creates the Adam slots
    for (const t of good.grads.values()) t.dispose();
    for (const s of good.bnStats.values()) {
      s.mean.dispose();
      s.variance.dispose();
    }
    const kept = snapshot(model, optimizer);
    const iterations = optimizer.iterations;
    const g = computeShardGradients(model, { images, labels, count: n }, 'semi-hard', 0.2);
    await assert.rejects(
      applyUpdateGuarded(model, optimizer, g, 1, 1e39, 0.99, 1),
      (e: NonFiniteError) => e.what === 'weights' && /not applied/.test(e.message),
    );
    for (const t of g.grads.values()) t.dispose();
    for (const s of g.bnStats.values()) {
      s.mean.dispose();
      s.variance.dispose();
    }
    assert.equal(optimizer.iterations, iterations);
    const after = snapshot(model, optimizer);
    assert.deepEqual([...after.keys()].sort(), [...kept.keys()].sort());
    for (const [name, values] of kept) assert.deepEqual(after.get(name), values, `${name} changed`);
    const leaked = tf.memory().numTensors - before - optimizer.slots.size; // the model existed before; the slots are new
    assert.ok(leaked <= 0, `${leaked} tensors leaked`);
    model.dispose();
    optimizer.dispose();
  });
});
