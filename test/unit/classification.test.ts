import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import {
  classificationLoss,
  compileTrainOptions,
  ConfigError,
  loadModel,
  lossWeightsAt,
  parseTrainSpec,
  SpecError,
  SyntheticSource,
  tf,
  Trainer,
} from '@facenet/core';
import { tempDir, useBackend } from '../helpers';

describe('classification loss (softmax / cosface over training identities)', function () {
  this.timeout(120000);
  before(useBackend);

  it('compiles with defaults, names a bad field, and weighs the two terms by mode and step', () => {
    const c = compileTrainOptions({ steps: 100, classification: {} }).classification;
    assert.deepEqual(c, { head: 'cosface', mode: 'beside', weight: 1, warmupSteps: 50, scale: 30, margin: 0.35, classes: 0 });
    assert.equal(compileTrainOptions({}).classification, false);
    assert.throws(
      () => compileTrainOptions({ steps: 10, classification: { warmupSteps: 11 } }),
      (e: ConfigError) => e.field === 'classification.warmupSteps',
    );
    assert.throws(
      () => compileTrainOptions({ classification: { weight: 0 } }),
      (e: ConfigError) => e.field === 'classification.weight',
    );
    assert.throws(
      () => parseTrainSpec({ classification: { head: 'arcface' } }),
      (e: SpecError) => e.issues[0]?.path === 'classification.head',
    );
    const at = (mode: 'beside' | 'alone' | 'warmup', step: number) =>
      lossWeightsAt(compileTrainOptions({ steps: 10, classification: { mode, weight: 0.5, warmupSteps: 4 } }).classification, step);
    assert.deepEqual(at('beside', 0), { triplet: 1, classification: 0.5 });
    assert.deepEqual(at('alone', 9), { triplet: 0, classification: 1 });
    assert.deepEqual(
      [at('warmup', 3), at('warmup', 4)],
      [
        { triplet: 0, classification: 1 },
        { triplet: 1, classification: 0 },
      ],
    );
    assert.deepEqual(lossWeightsAt(false, 0), { triplet: 1, classification: 0 });
  });

  it('is the cross-entropy of scaled cosines, with the margin taken from the true class only', () => {
    // Two unit embeddings, three classes; class weights of different norms (normalised away).
    const e = tf.tensor2d([
      [1, 0],
      [0.6, 0.8],
    ]);
    const w = tf.tensor2d([
      [2, 0, -1],
      [0, 3, 0],
    ]); // columns: (1,0), (0,1), (-1,0) after normalising
    const labels = new Int32Array([0, 1]);
    const expected = (m: number) => {
      const ce = (cos: number[], y: number) => {
        const z = cos.map((c, j) => 10 * (c - (j === y ? m : 0)));
        return -z[y]! + Math.log(z.reduce((a, v) => a + Math.exp(v), 0));
      };
      return (ce([1, 0, -1], 0) + ce([0.6, 0.8, -0.6], 1)) / 2;
    };
    const soft = classificationLoss(e, labels, w, 'softmax', 10, 0.35);
    const cos = classificationLoss(e, labels, w, 'cosface', 10, 0.35);
    assert.ok(Math.abs(soft.loss.dataSync()[0]! - expected(0)) < 1e-4, `${soft.loss.dataSync()[0]} vs ${expected(0)}`);
    assert.ok(Math.abs(cos.loss.dataSync()[0]! - expected(0.35)) < 1e-4, `${cos.loss.dataSync()[0]} vs ${expected(0.35)}`);
    assert.equal(soft.accuracy, 1);
    assert.equal(classificationLoss(e, new Int32Array([2, 2]), w, 'softmax', 10, 0).accuracy, 0);
    tf.dispose([e, w, soft.loss, cos.loss]);
  });

  it('trains alone on synthetic identities (loss falls, accuracy rises); checkpoints keep the class weights, inference ignores them', async () => {
    const t = tempDir();
    try {
      const source = new SyntheticSource({ identities: 12, imagesPerIdentity: 6 });
      const trainer = new Trainer(source, {
        model: { architecture: 'tiny', imageSize: 24 },
        batch: { P: 12, K: 4 },
        steps: 30,
        augment: false,
        seed: 2,
        optimizer: { name: 'adam', learningRate: 0.01 },
        classification: { mode: 'alone', head: 'softmax' },
        checkpointDir: t.dir,
      });
      assert.equal(trainer.config.classification && trainer.config.classification.classes, 12, 'one class per identity of the source');
      const history: { classificationLoss: number; classificationAccuracy: number }[] = [];
      await trainer.run({ onStep: (r) => history.push(r) });
      const first = history.slice(0, 3).reduce((a, h) => a + h.classificationLoss, 0) / 3;
      const last = history.slice(-3).reduce((a, h) => a + h.classificationLoss, 0) / 3;
      assert.ok(last < first * 0.7, `classification loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
      assert.ok(history.at(-1)!.classificationAccuracy > history[0]!.classificationAccuracy, 'accuracy rose');
      const dir = join(t.dir, 'step-000030');
      const { model } = await loadModel(dir); // the embedding network alone
      assert.equal(model.store.trainable.has('classifier/weights'), false);
      model.dispose();
      const resumed = await Trainer.resume(dir, source, { steps: 31 });
      assert.equal(resumed.step, 30);
      assert.ok(resumed.model.store.trainable.has('classifier/weights'));
      resumed.dispose();
      trainer.dispose();
    } finally {
      t.cleanup();
    }
  });
});
