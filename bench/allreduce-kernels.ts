/**
 * The allreduce's per-element kernels on this machine, in one run: the reduce loop (the
 * four-way unrolled `addInto` against the plain loop it replaced) and fp16 encode / decode.
 * Median of --reps over 8M floats (32 MB, a W=2 round of a 64 MB vector).
 *
 *   npx tsx bench/allreduce-kernels.ts [--n 8388608] [--reps 9]
 *
 * Prints JSON: milliseconds and nanoseconds per element of each kernel.
 */
import { parseArgs } from 'node:util';
import { addInto, decodeHalves, encodeHalves } from '@facenet/worker';

const { values } = parseArgs({ options: { n: { type: 'string', default: String(8 << 20) }, reps: { type: 'string', default: '9' } } });
const n = Number(values.n);
const reps = Number(values.reps);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** The reduce loop before this round's change: one element an iteration. */
function plainAdd(data: Float32Array, base: number, values: Float32Array): void {
  for (let i = 0; i < values.length; i++) data[base + i] = (data[base + i] as number) + (values[i] as number);
}

function time(fn: () => void): { ms: number; nsPerElement: number } {
  const ms: number[] = [];
  for (let r = 0; r < reps + 1; r++) {
    const t0 = performance.now();
    fn();
    if (r > 0) ms.push(performance.now() - t0); // the first rep warms up
  }
  return { ms: median(ms), nsPerElement: (median(ms) * 1e6) / n };
}

const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.01);
const incoming = Float32Array.from({ length: n }, (_, i) => Math.cos(i) * 0.01);
const chunk = 1 << 18; // the 1 MiB chunks the ring delivers
const reduceWith = (add: typeof addInto) => () => {
  for (let off = 0; off < n; off += chunk) add(data, off, incoming.subarray(off, Math.min(n, off + chunk)));
};
const halves = encodeHalves(data, 0, n);
const out = new Float32Array(n);
process.stdout.write(
  `${JSON.stringify(
    {
      benchmark: 'allreduce-kernels',
      elements: n,
      reps,
      reducePlain: time(reduceWith(plainAdd)),
      reduceUnrolled: time(reduceWith(addInto)),
      fp16Encode: time(() => encodeHalves(data, 0, n)),
      fp16Decode: time(() => decodeHalves(halves, out)),
    },
    null,
    2,
  )}\n`,
);
