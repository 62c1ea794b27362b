import { strict as assert } from 'node:assert';
import { selectTriplets, semiHardTriplets, tf, tripletLoss } from '@facenet/core';
import { useBackend } from '../helpers';

// Four faces, two identities. Symmetric squared distances chosen by hand.
const LABELS = [0, 0, 1, 1];
const D = Float32Array.from([0, 0.5, 0.55, 0.9, 0.5, 0, 0.3, 1.2, 0.55, 0.3, 0, 0.4, 0.9, 1.2, 0.4, 0]);
const close = (a: number, b: number, eps = 1e-6) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

describe('triplet selection on constructed distances', () => {
  it('semi-hard picks the closest negative farther than the positive', () => {
    const s = selectTriplets(D, LABELS, 'semi-hard', 0.2);
    assert.deepEqual(s.triplets, [
      { anchor: 0, positive: 1, negative: 2 }, // 0.5 < 0.55 < 0.7: semi-hard, loss 0.15
      { anchor: 1, positive: 0, negative: 3 }, // 0.3 is closer than 0.5; next is 1.2: easy, loss 0
      { anchor: 2, positive: 3, negative: 0 }, // 0.4 < 0.55 < 0.6: semi-hard, loss 0.05
      { anchor: 3, positive: 2, negative: 0 }, // 0.9: easy
    ]);
    close(s.loss, (0.15 + 0.05) / 4);
    assert.equal(s.active, 2);
    assert.equal(s.total, 4);
    close(s.meanPositiveDistance, (0.5 + 0.5 + 0.4 + 0.4) / 4);
    close(s.meanNegativeDistance, (0.55 + 1.2 + 0.55 + 0.9) / 4);
  });

  it('semi-hard falls back to the farthest negative when all are closer than the positive', () => {
    const d = Float32Array.from([0, 1.0, 0.3, 0.5, 1.0, 0, 2, 2, 0.3, 2, 0, 2, 0.5, 2, 2, 0]);
    const t = semiHardTriplets(d, [0, 0, 1, 2]);
    assert.deepEqual(t[0], { anchor: 0, positive: 1, negative: 3 });
  });

  it('batch-hard takes the farthest positive and the closest negative per anchor', () => {
    const s = selectTriplets(D, LABELS, 'batch-hard', 0.2);
    assert.deepEqual(
      s.triplets?.map((t) => [t.anchor, t.positive, t.negative]),
      [
        [0, 1, 2],
        [1, 0, 2],
        [2, 3, 1],
        [3, 2, 0],
      ],
    );
    close(s.loss, (0.15 + 0.4 + 0.3 + 0) / 4);
    assert.equal(s.active, 3);
  });

  it('batch-all averages over the active triplets and weights D exactly', () => {
    const s = selectTriplets(D, LABELS, 'batch-all', 0.2);
    assert.equal(s.total, 8);
    assert.equal(s.active, 4); // (0,1,2) 0.15, (1,0,2) 0.4, (2,3,0) 0.05, (2,3,1) 0.3
    close(s.loss, (0.15 + 0.4 + 0.05 + 0.3) / 4);
    const W = Array.from(s.weights, (w) => Math.round(w * 4));
    assert.deepEqual(W, [0, 1, -1, 0, 1, 0, -1, 0, -1, -1, 0, 2, 0, 0, 0, 0]);
  });

  it('a one-image identity is never an anchor but serves as a negative', () => {
    const labels = [0, 0, 5];
    const d = Float32Array.from([0, 0.5, 0.6, 0.5, 0, 0.9, 0.6, 0.9, 0]);
    const s = selectTriplets(d, labels, 'semi-hard', 0.2);
    assert.deepEqual(
      s.triplets?.map((t) => t.anchor),
      [0, 1],
    );
    assert.ok(s.triplets?.every((t) => t.negative === 2));
  });
});

describe('triplet loss tensor', () => {
  before(useBackend);

  it('has the selection value and the gradient of the explicit triplet formula', () => {
    const e = tf.tidy(() => {
      const x = tf.randomNormal([12, 8], 0, 1, 'float32', 42);
      return tf.div(x, tf.norm(x, 2, 1, true)) as tf.Tensor2D;
    });
    const labels = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3];
    for (const strategy of ['semi-hard', 'batch-hard'] as const) {
      let triplets: { anchor: number; positive: number; negative: number }[] = [];
      const g1 = tf.grad((x: tf.Tensor) => {
        const r = tripletLoss(x as tf.Tensor2D, labels, strategy, 0.2);
        triplets = r.selection.triplets ?? [];
        return r.loss;
      })(e);
      const explicit = (x: tf.Tensor) => {
        // Rows picked by one-hot products (wasm has no gradient kernel for gather).
        const pick = (idx: number[]) => tf.matMul(tf.oneHot(tf.tensor1d(idx, 'int32'), 12).toFloat(), x as tf.Tensor2D);
        const a = pick(triplets.map((t) => t.anchor));
        const p = pick(triplets.map((t) => t.positive));
        const n = pick(triplets.map((t) => t.negative));
        const dap = tf.sum(tf.square(tf.sub(a, p)), 1);
        const dan = tf.sum(tf.square(tf.sub(a, n)), 1);
        return tf.mean(tf.relu(tf.add(tf.sub(dap, dan), 0.2)));
      };
      const g2 = tf.grad(explicit)(e);
      const err = tf.max(tf.abs(tf.sub(g1, g2))).dataSync()[0]!;
      assert.ok(err < 1e-5, `${strategy}: gradient differs by ${err}`);
      const value = tripletLoss(e, labels, strategy, 0.2).loss.dataSync()[0]!;
      close(value, explicit(e).dataSync()[0]!, 1e-5);
    }
  });
});
