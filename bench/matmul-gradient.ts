/**
 * The dense-layer gradient alone, tfjs's (dA = matMul(dy, B, false, true)) against the project's
 * (B transposed first), on the chosen backend, in one process, for the shapes the zoo and a
 * classifier head over many identities produce.
 *
 *   npx tsx bench/matmul-gradient.ts [--backend wasm] [--reps 7]
 *
 * Prints JSON: per shape the median milliseconds of each and their ratio.
 */
import { parseArgs } from 'node:util';
import type { tf as TF } from '@facenet/core';

const { values } = parseArgs({ options: { backend: { type: 'string', default: 'wasm' }, reps: { type: 'string', default: '7' } } });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  process.env.FACENET_STOCK_MATMUL_GRADIENT = '1'; // time both by hand below
  const { selectBackend, tf } = await import('@facenet/core');
  await selectBackend({ backend: values.backend, log: null });
  const shapes: [number, number, number][] = [
    [90, 736, 128],
    [180, 1024, 128],
    [90, 512, 1500],
    [400, 512, 5749],
  ];
  const results = [];
  for (const [m, k, n] of shapes) {
    const a = tf.randomNormal([m, k]);
    const b = tf.randomNormal([k, n]);
    const dy = tf.randomNormal([m, n]);
    const time = (f: () => TF.Tensor[]) => {
      const ts: number[] = [];
      for (let r = 0; r < Number(values.reps) + 1; r++) {
        const t0 = performance.now();
        const out = f();
        for (const o of out) o.dataSync();
        if (r > 0) ts.push(performance.now() - t0);
        out.forEach((o) => o.dispose());
      }
      return median(ts);
    };
    const stock = time(() => [tf.matMul(dy, b, false, true), tf.matMul(a, dy, true, false)]);
    const ours = time(() => tf.tidy(() => [tf.matMul(dy, tf.transpose(b)), tf.matMul(tf.transpose(a), dy)]));
    results.push({ m, k, n, stockMs: stock, projectMs: ours, speedup: stock / ours });
    a.dispose();
    b.dispose();
    dy.dispose();
  }
  process.stdout.write(`${JSON.stringify({ benchmark: 'matmul-gradient', backend: values.backend, results }, null, 2)}\n`);
}

void main();
