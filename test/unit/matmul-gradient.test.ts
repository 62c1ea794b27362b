import { strict as assert } from 'node:assert';
import { tf } from '@facenet/core';
import { useBackend } from '../helpers';

const maxErr = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!;

/** The registered BatchMatMul gradient (no transposed operands on wasm/cpu) against the products it stands for. */
describe('matMul gradient without transposed operands', () => {
  let chosen = '';
  before(async () => {
    await useBackend();
    chosen = tf.getBackend();
  });
  after(() => tf.setBackend(chosen));

  for (const backend of ['wasm', 'cpu']) {
    it(`${backend}: dA = dy B^T and dB = A^T dy, for dense-layer shapes, batched and transposed products`, async () => {
      await tf.setBackend(backend);
      const cases: { a: number[]; b: number[]; ta?: boolean; tb?: boolean }[] = [
        { a: [90, 512], b: [512, 128] },
        { a: [7, 33], b: [33, 5] },
        { a: [3, 4, 6], b: [3, 6, 2] },
        { a: [6, 4], b: [6, 5], ta: true },
        { a: [4, 6], b: [5, 6], tb: true },
      ];
      for (const c of cases) {
        const a = tf.randomNormal(c.a, 0, 1, 'float32', 1);
        const b = tf.randomNormal(c.b, 0, 1, 'float32', 2);
        const y = tf.matMul(a, b, c.ta, c.tb);
        const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 3);
        const [ga, gb] = tf.grads((x: tf.Tensor, w: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, w, c.ta, c.tb), dy)))([a, b]);
        // The reference from the definition, with the forward kernel's own transposes:
        // y = A B: dA = dy B^T, dB = A^T dy; y = A^T B: dA = B dy^T, dB = A dy; y = A B^T: dA = dy B, dB = dy^T A.
        const refA = c.ta ? tf.matMul(b, dy, false, true) : tf.matMul(dy, b, false, !c.tb);
        const refB = c.tb ? tf.matMul(dy, a, true, false) : tf.matMul(a, dy, !c.ta, false);
        assert.ok(maxErr(ga!, refA) <= 1e-3, `${backend} ${JSON.stringify(c)} dA error ${maxErr(ga!, refA)}`);
        assert.ok(maxErr(gb!, refB) <= 1e-3, `${backend} ${JSON.stringify(c)} dB error ${maxErr(gb!, refB)}`);
      }
    });
  }
});
