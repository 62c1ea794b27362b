import { strict as assert } from 'node:assert';
import { conv2dFilterGradient, conv2dInputGradient, tf } from '@facenet/core';
import { useBackend } from '../helpers';

type Pad = 'same' | 'valid';
interface Case {
  x: [number, number, number, number];
  k: [number, number];
  co: number;
  s: number;
  d: number;
  pad: Pad;
}

/** A dilated filter as the equivalent dense filter with zeros between taps. */
function dilateFilter(f: tf.Tensor4D, d: number): tf.Tensor4D {
  if (d === 1) return f;
  const [kh, kw, ci, co] = f.shape;
  const buf = tf.buffer([(kh - 1) * d + 1, (kw - 1) * d + 1, ci, co]);
  const v = f.arraySync();
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++) for (let c = 0; c < ci; c++) for (let o = 0; o < co; o++) buf.set(v[i]![j]![c]![o]!, i * d, j * d, c, o);
  return buf.toTensor() as tf.Tensor4D;
}

/** The stock cpu kernels (run directly, bypassing our override) on the dense equivalent filter. */
function stockGradients(x: tf.Tensor4D, f: tf.Tensor4D, dy: tf.Tensor4D, c: Case): { dx: tf.Tensor; df: tf.Tensor } {
  const dense = dilateFilter(f, c.d);
  const attrs = { strides: [c.s, c.s], pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
  const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: dense }, { ...attrs, inputShape: x.shape } as never) as tf.Tensor;
  const dfDense = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: dense.shape } as never) as tf.Tensor4D;
  // The dilated filter's gradient is the dense gradient at the tap positions.
  const df = c.d === 1 ? dfDense : tf.stridedSlice(dfDense, [0, 0, 0, 0], dfDense.shape, [c.d, c.d, 1, 1]);
  return { dx, df };
}

function randomCases(n: number): Case[] {
  let seed = 12345;
  const rnd = (lo: number, hi: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return lo + (seed % (hi - lo + 1));
  };
  const cases: Case[] = [
    { x: [2, 9, 9, 3], k: [3, 3], co: 4, s: 1, d: 1, pad: 'same' },
    { x: [2, 10, 11, 3], k: [3, 3], co: 5, s: 2, d: 1, pad: 'same' },
    { x: [1, 12, 12, 2], k: [7, 7], co: 3, s: 2, d: 1, pad: 'same' },
    { x: [2, 10, 11, 3], k: [5, 4], co: 5, s: 3, d: 1, pad: 'valid' },
    { x: [2, 11, 9, 2], k: [3, 3], co: 3, s: 1, d: 2, pad: 'same' },
    { x: [1, 13, 13, 3], k: [3, 2], co: 2, s: 1, d: 3, pad: 'valid' },
    // 1x1 stride 1: the matMul path, with fewer and with more outputs than inputs.
    { x: [3, 7, 9, 6], k: [1, 1], co: 2, s: 1, d: 1, pad: 'same' },
    { x: [2, 5, 3, 2], k: [1, 1], co: 7, s: 1, d: 1, pad: 'valid' },
    { x: [2, 9, 8, 4], k: [1, 1], co: 3, s: 2, d: 1, pad: 'same' },
  ];
  for (let i = 0; i < n; i++) {
    const s = rnd(1, 3);
    const d = s === 1 ? rnd(1, 3) : 1; // tfjs conv2d takes stride > 1 or dilation > 1, not both
    const k: [number, number] = [rnd(1, 5), rnd(1, 5)];
    // Inputs at least as large as the dilated filter, so 'valid' has an output.
    const h = Math.max(rnd(7, 14), (k[0] - 1) * d + 2);
    const w = Math.max(rnd(7, 14), (k[1] - 1) * d + 2);
    cases.push({ x: [rnd(1, 3), h, w, rnd(1, 5)], k, co: rnd(1, 6), s, d, pad: rnd(0, 1) ? 'same' : 'valid' });
  }
  return cases;
}

describe('conv2d gradients as forward convolutions', function () {
  this.timeout(60000);
  let chosen = '';
  before(async () => {
    await useBackend();
    chosen = tf.getBackend(); // restored after: the cases below switch between wasm and cpu
  });
  after(() => tf.setBackend(chosen));

  for (const backend of ['wasm', 'cpu']) {
    it(`match the stock cpu kernels on ${backend} (strides, padding modes, dilations)`, async () => {
      for (const c of randomCases(14)) {
        await tf.setBackend('cpu');
        const x = tf.randomNormal(c.x, 0, 1, 'float32', 1) as tf.Tensor4D;
        const f = tf.randomNormal([c.k[0], c.k[1], c.x[3], c.co], 0, 1, 'float32', 2) as tf.Tensor4D;
        const y = tf.conv2d(x, f, c.s, c.pad, 'NHWC', c.d);
        const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 3) as tf.Tensor4D;
        const ref = stockGradients(x, f, dy, c);
        const refDx = ref.dx.arraySync();
        const refDf = ref.df.arraySync();
        await tf.setBackend(backend);
        // Through tf.grads, so the registered Conv2D gradient (ours) is what runs.
        const [gx, gf] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.s, c.pad, 'NHWC', c.d), dy)),
        )([x, f]);
        const errX = tf.max(tf.abs(tf.sub(gx!, tf.tensor(refDx as number[])))).dataSync()[0]!;
        const errF = tf.max(tf.abs(tf.sub(gf!, tf.tensor(refDf as number[])))).dataSync()[0]!;
        assert.ok(errX <= 1e-4, `dx max error ${errX} for ${JSON.stringify(c)}`);
        assert.ok(errF <= 1e-4, `dfilter max error ${errF} for ${JSON.stringify(c)}`);
      }
    });
  }

  it('exposes the two gradient functions with the documented shapes', async () => {
    await tf.setBackend(chosen);
    const x = tf.randomNormal([2, 8, 8, 3]) as tf.Tensor4D;
    const dy = tf.randomNormal([2, 4, 4, 5]) as tf.Tensor4D;
    const pad = { top: 0, bottom: 1, left: 0, right: 1 };
    assert.deepEqual(conv2dFilterGradient(x, dy, [3, 3, 3, 5], [2, 2], [1, 1], pad).shape, [3, 3, 3, 5]);
    assert.deepEqual(
      conv2dInputGradient([2, 8, 8, 3], dy, tf.randomNormal([3, 3, 3, 5]) as tf.Tensor4D, [2, 2], [1, 1], pad).shape,
      [2, 8, 8, 3],
    );
  });
});
