import { strict as assert } from 'node:assert';
import {
  applyUpdate,
  batchNormTraining,
  computeShardGradients,
  disposeGradients,
  EmbeddingModel,
  LayerBuilder,
  maxPoolGradFirstMax,
  Optimizer,
  ParamStore,
  projectKernelsApply,
  projectKernelsInstalled,
  splitLastAxis,
  tf,
  useProjectKernels,
} from '@facenet/core';
import { useBackend } from '../helpers';

const maxErr = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]!);

/** A small deterministic generator, so a failing case can be reproduced from its printout. */
function rng(seed: number): (lo: number, hi: number) => number {
  let s = seed;
  return (lo, hi) => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return lo + (s % (hi - lo + 1));
  };
}

interface PoolCase {
  x: [number, number, number, number];
  size: [number, number];
  stride: [number, number];
  pad: 'same' | 'valid';
  /** Values drawn from a few levels (many ties), negatives included. */
  ties: boolean;
}

function poolCases(n: number): PoolCase[] {
  const r = rng(777);
  const cases: PoolCase[] = [
    { x: [90, 8, 8, 16], size: [3, 3], stride: [1, 1], pad: 'same', ties: true },
    { x: [2, 9, 7, 3], size: [3, 3], stride: [2, 2], pad: 'same', ties: true },
    { x: [1, 5, 5, 1], size: [2, 2], stride: [2, 2], pad: 'valid', ties: false },
  ];
  for (let i = 0; i < n; i++) {
    const size: [number, number] = [r(1, 4), r(1, 4)];
    cases.push({
      x: [r(1, 4), Math.max(size[0], r(3, 11)), Math.max(size[1], r(3, 11)), r(1, 6)],
      size,
      stride: [r(1, 3), r(1, 3)],
      pad: r(0, 1) ? 'same' : 'valid',
      ties: r(0, 1) === 1,
    });
  }
  return cases;
}

/** Distinct positive values (a shuffled 1..n): every window has one maximum, above FLT_MIN. */
function distinctPositive(shape: [number, number, number, number], seed: number): tf.Tensor4D {
  const r = rng(seed);
  const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i + 1);
  for (let i = values.length - 1; i > 0; i--) {
    const j = r(0, i);
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  return tf.tensor4d(values, shape);
}

function poolInput(c: PoolCase, seed: number): tf.Tensor4D {
  const r = rng(seed);
  const size = c.x.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: size }, () => (c.ties ? r(-2, 2) : (r(0, 1_000_000) - 500_000) / 1000));
  return tf.tensor4d(values, c.x);
}

describe('project kernels (wasm and cpu gradients)', function () {
  this.timeout(120000);
  let chosen = '';
  before(async () => {
    await useBackend();
    chosen = tf.getBackend();
  });
  after(async () => {
    await tf.setBackend(chosen);
    useProjectKernels(projectKernelsApply(chosen));
  });

  describe('max-pool gradient', () => {
    it("matches tfjs-cpu's MaxPoolGrad (first maximum wins) on random shapes, padding and ties", async () => {
      await tf.setBackend('cpu');
      for (const [i, c] of poolCases(24).entries()) {
        const x = poolInput(c, i + 1);
        const y = tf.maxPool(x, c.size, c.stride, c.pad);
        const dy = tf.randomNormal(y.shape, 0, 1, 'float32', i) as tf.Tensor4D;
        const attrs = { filterSize: c.size, strides: c.stride, pad: c.pad };
        const ref = tf.engine().runKernel('MaxPoolGrad', { dy, input: x, output: y }, attrs as never) as tf.Tensor;
        const info = tf.backend_util.computePool2DInfo(c.x, c.size, c.stride, 1, c.pad);
        const ours = tf.tensor(
          maxPoolGradFirstMax(x.dataSync() as Float32Array, y.dataSync() as Float32Array, dy.dataSync() as Float32Array, info),
          c.x,
        );
        assert.ok(maxErr(ours, ref) <= 1e-5, `case ${i} ${JSON.stringify(c)}: error ${maxErr(ours, ref)}`);
      }
    });

    for (const backend of ['wasm', 'cpu']) {
      // tfjs-wasm's own kernel differs on ties and on windows whose maximum is <= FLT_MIN (maxpool-gradient.ts).
      it(`is the registered gradient on ${backend}, and equals the stock one where each window has one positive maximum`, async () => {
        await tf.setBackend(backend);
        for (const [i, c] of poolCases(10).entries()) {
          const x = distinctPositive(c.x, 100 + i);
          const dy = tf.randomNormal(tf.maxPool(x, c.size, c.stride, c.pad).shape, 0, 1, 'float32', i);
          const grad = () => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.size, c.stride, c.pad), dy)))(x);
          useProjectKernels(true);
          const ours = grad();
          useProjectKernels(false);
          const stock = grad();
          useProjectKernels(true);
          assert.ok(maxErr(ours, stock) <= 1e-5, `${backend} case ${i} ${JSON.stringify(c)}: error ${maxErr(ours, stock)}`);
        }
      });
    }
  });

  describe('concat gradient', () => {
    it('splits channels-last values exactly, and the registered gradient equals the stock split', async () => {
      const values = Float32Array.from({ length: 2 * 3 * 7 }, (_, i) => i);
      const parts = splitLastAxis(values, [2, 4, 1]);
      assert.deepEqual([...parts[0]!.slice(0, 4)], [0, 1, 7, 8]);
      assert.deepEqual([...parts[1]!.slice(0, 4)], [2, 3, 4, 5]);
      assert.deepEqual([...parts[2]!], [6, 13, 20, 27, 34, 41]);
      for (const backend of ['wasm', 'cpu']) {
        await tf.setBackend(backend);
        for (const axis of [3, 1, -1]) {
          const xs = [
            [2, 3, 5, 4],
            [2, 3, 5, 1],
            [2, 3, 5, 6],
          ].map((s, i) => {
            const shape = [...s];
            if (axis === 1) shape[3] = 4;
            return tf.randomNormal(shape, 0, 1, 'float32', i);
          });
          const dy = tf.randomNormal(tf.concat(xs, axis).shape, 0, 1, 'float32', 9);
          const grads = () => tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(tf.concat([a, b, c], axis), dy)))(xs);
          useProjectKernels(true);
          const ours = grads();
          useProjectKernels(false);
          const stock = grads();
          useProjectKernels(true);
          ours.forEach((g, i) => assert.equal(maxErr(g, stock[i]!), 0, `${backend} axis ${axis} input ${i}`));
        }
      }
    });
  });

  describe('batch norm in training mode', () => {
    /** The textbook formula through the tape: what the one-op version must equal. */
    const reference = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const axes = x.shape.slice(0, -1).map((_, i) => i);
      const m = tf.moments(x, axes);
      return tf.add(tf.mul(tf.sub(x, m.mean), tf.mul(g, tf.rsqrt(tf.add(m.variance, 1e-3)))), b);
    };
    for (const backend of ['wasm', 'cpu']) {
      it(`${backend}: output, batch statistics and all three gradients equal the formula's (4-D, odd sizes, and 2-D)`, async () => {
        await tf.setBackend(backend);
        const r = rng(31);
        const shapes: number[][] = [
          [90, 4, 4, 8],
          [3, 5, 7, 2],
          [1, 1, 1, 3],
          [17, 6],
          [5, 9, 11, 4],
        ];
        for (const shape of shapes) {
          const c = shape[shape.length - 1]!;
          const x = tf.add(tf.mul(tf.randomNormal(shape, 0, 1, 'float32', r(1, 99)), 3), 1.5);
          const gamma = tf.randomNormal([c], 1, 0.5, 'float32', r(1, 99)) as tf.Tensor1D;
          const beta = tf.randomNormal([c], 0, 0.5, 'float32', r(1, 99)) as tf.Tensor1D;
          const dy = tf.randomNormal(shape, 0, 1, 'float32', r(1, 99));
          const ours = batchNormTraining(x, gamma, beta, 1e-3);
          const ref = reference(x, gamma, beta);
          assert.ok(maxErr(ours.y, ref) <= 1e-4, `${shape} y: ${maxErr(ours.y, ref)}`);
          const axes = shape.slice(0, -1).map((_, i) => i);
          const m = tf.moments(x, axes);
          assert.ok(maxErr(ours.mean, m.mean) <= 1e-5 && maxErr(ours.variance, m.variance) <= 1e-4, `${shape} statistics`);
          const f = (fn: (a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.Tensor) =>
            tf.grads((a: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(fn(a, g, b), dy)))([x, gamma, beta]);
          const g1 = f((a, g, b) => {
            const o = batchNormTraining(a, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3);
            tf.dispose([o.mean, o.variance]);
            return o.y;
          });
          const g2 = f(reference);
          ['dx', 'dgamma', 'dbeta'].forEach((name, i) => {
            const scale = Math.max(1, tf.max(tf.abs(g2[i]!)).dataSync()[0]!);
            const err = maxErr(g1[i]!, g2[i]!) / scale;
            assert.ok(err <= 1e-4, `${backend} ${shape} ${name}: relative error ${err}`);
          });
        }
      });
    }
  });

  describe('inference: conv -> batch norm (-> relu) as one fused convolution', () => {
    for (const backend of ['wasm', 'cpu']) {
      it(`${backend}: equals conv, then the moving-statistics formula, then relu`, async () => {
        await tf.setBackend(backend);
        const store = new ParamStore(3);
        const x = tf.randomNormal([4, 9, 9, 5], 0, 1, 'float32', 1) as tf.Tensor4D;
        for (const [kernel, stride, relu] of [
          [3, 1, true],
          [1, 2, false],
          [5, 2, true],
        ] as const) {
          const name = `l${kernel}${stride}`;
          new LayerBuilder(store, false).convBn(name, x, 6, kernel, stride, relu); // creates the variables
          // Moving statistics and affine parameters away from their initial 0/1.
          for (const [suffix, mean, sd] of [
            ['bn/moving_mean', 0.3, 0.5],
            ['bn/moving_variance', 2, 0.5],
          ] as const)
            store.state.get(`${name}/${suffix}`)!.assign(tf.abs(tf.randomNormal([6], mean, sd, 'float32', kernel)));
          store.trainable.get(`${name}/bn/gamma`)!.assign(tf.randomNormal([6], 1, 0.3, 'float32', 7));
          store.trainable.get(`${name}/bn/beta`)!.assign(tf.randomNormal([6], 0, 0.3, 'float32', 8));
          const fused = new LayerBuilder(store, false).convBn(name, x, 6, kernel, stride, relu);
          const p = (k: string) => store.trainable.get(`${name}/${k}`) ?? store.state.get(`${name}/${k}`)!;
          const conv = tf.conv2d(x, p('w') as tf.Tensor4D, stride, 'same');
          const bn = tf.add(
            tf.mul(tf.sub(conv, p('bn/moving_mean')), tf.mul(p('bn/gamma'), tf.rsqrt(tf.add(p('bn/moving_variance'), 1e-3)))),
            p('bn/beta'),
          );
          const ref = relu ? tf.relu(bn) : bn;
          assert.deepEqual(fused.shape, ref.shape);
          assert.ok(maxErr(fused, ref) <= 1e-4, `${backend} k${kernel} s${stride}: ${maxErr(fused, ref)}`);
        }
        store.dispose();
      });
    }
  });

  describe('a whole training step', () => {
    it('leaks no tensor and no wasm memory from step to step (inception-small and resnet-small, wasm)', async () => {
      await tf.setBackend('wasm');
      useProjectKernels(true);
      const size = 32;
      const n = 20;
      const images = Float32Array.from({ length: n * size * size * 3 }, (_, i) => Math.sin(i) * 0.9);
      const labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / 5));
      for (const architecture of ['inception-small', 'resnet-small'] as const) {
        const m = new EmbeddingModel({ architecture, imageSize: size, width: 0.25 });
        const opt = new Optimizer({ name: 'adam', learningRate: 1e-3 });
        const step = () => {
          const g = computeShardGradients(m, { images, labels, count: n }, 'semi-hard', 0.2);
          applyUpdate(m, opt, g, 1, 1e-3, 0.9);
          disposeGradients(g);
          tf.tidy(() => m.embed(tf.tensor4d(images, [n, size, size, 3]))).dispose();
        };
        step(); // optimizer slots are created on the first step
        const before = tf.memory();
        for (let i = 0; i < 3; i++) step();
        const after = tf.memory();
        m.dispose();
        assert.equal(after.numTensors - before.numTensors, 0, `${architecture}: tensors left by 3 steps`);
        assert.equal(after.numBytes - before.numBytes, 0, `${architecture}: bytes left by 3 steps`);
      }
    });

    it("leaves the weights within 1e-5 of stock tfjs's step on a fixed batch (inception-small; ours on wasm and cpu, stock on cpu)", async () => {
      const size = 32;
      const n = 30;
      const r = rng(5);
      const images = Float32Array.from({ length: n * size * size * 3 }, () => r(-1000, 1000) / 1000);
      const labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / 5));
      /** One step from the same seeded weights; returns every weight and moving statistic after it. */
      const stepWith = async (backend: string, project: boolean) => {
        await tf.setBackend(backend);
        useProjectKernels(project);
        assert.equal(projectKernelsInstalled(), project);
        const m = new EmbeddingModel({ architecture: 'inception-small', imageSize: size, width: 0.5 });
        const g = computeShardGradients(m, { images, labels, count: n }, 'semi-hard', 0.2);
        assert.ok(g.stats.triplets > 0);
        applyUpdate(m, new Optimizer({ name: 'adagrad' }), g, 1, 0.05, 0.9);
        disposeGradients(g);
        const out = new Map<string, Float32Array>();
        for (const [name, v] of [...m.store.trainable, ...m.store.state]) out.set(name, v.dataSync() as Float32Array);
        m.dispose();
        return out;
      };
      // wasm has no stock filter gradient for Conv2D at all: the stock step runs on tfjs-cpu.
      const stock = await stepWith('cpu', false);
      for (const backend of ['cpu', 'wasm']) {
        const ours = await stepWith(backend, true);
        let worst = 0;
        let where = '';
        for (const [name, v] of ours) {
          const ref = stock.get(name)!;
          for (let i = 0; i < v.length; i++) {
            const d = Math.abs(v[i]! - ref[i]!);
            if (d > worst) [worst, where] = [d, name];
          }
        }
        assert.ok(worst <= 1e-5, `${backend}: largest weight difference after one step ${worst} (${where})`);
      }
    });
  });
});
