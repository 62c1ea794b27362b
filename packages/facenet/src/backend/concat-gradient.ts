/**
 * Concat's gradient along the channel (last) axis as one copy in JavaScript.
 *
 * Why: every inception module concatenates its branches on channels, and tfjs's gradient splits
 * dy with SplitV, which tfjs-wasm runs as strided slices: 111-125 ms for the six concats of an
 * inception-small step (batch 90, 64 px). Reading dy once and copying each pixel's channel runs
 * into the branches' buffers is the same result, bit for bit, in one pass. Other axes, dtypes
 * and backends keep the stock gradient.
 */
import { overrideGradient } from './override-gradient';
import { float32Values } from './tensor-memory';
import { tf } from './tf';

/** Splits channels-last `values` (last axis `sizes.reduce(+)` wide) into one array per size. */
export function splitLastAxis(values: Float32Array, sizes: number[]): Float32Array[] {
  const width = sizes.reduce((a, b) => a + b, 0);
  const rows = values.length / width;
  const parts = sizes.map((s) => new Float32Array(rows * s));
  for (let r = 0; r < rows; r++) {
    let from = r * width;
    for (let i = 0; i < sizes.length; i++) {
      const s = sizes[i] as number;
      const part = parts[i] as Float32Array;
      const to = r * s;
      for (let k = 0; k < s; k++) part[to + k] = values[from + k] as number;
      from += s;
    }
  }
  return parts;
}

let stock: tf.GradConfig | undefined;

/** Installs the one-copy Concat gradient for the last axis (wasm and cpu). */
export function registerConcatGradient(): void {
  stock ??= tf.getGradient('Concat');
  const fallback = stock;
  overrideGradient({
    kernelName: 'Concat',
    saveAllInputs: true,
    gradFunc: (dyAny, saved, attrs) => {
      const dy = dyAny as tf.Tensor;
      const backend = tf.getBackend();
      const first = saved[0] as tf.Tensor;
      const rank = first.rank;
      const axis = tf.util.parseAxisParam((attrs as unknown as { axis: number }).axis, first.shape)[0];
      const lastAxis = axis === rank - 1 && rank > 1;
      if (!lastAxis || dy.dtype !== 'float32' || (backend !== 'wasm' && backend !== 'cpu')) return fallback!.gradFunc(dyAny, saved, attrs);
      const sizes = saved.map((t) => t.shape[axis] as number);
      const parts = splitLastAxis(float32Values(dy), sizes);
      const grads = parts.map((p, i) => tf.tensor(p, (saved[i] as tf.Tensor).shape, 'float32'));
      return Object.fromEntries(grads.map((g, i) => [String(i), () => g]));
    },
  });
}

/** Puts tfjs's own Concat gradient back. */
export function restoreConcatGradient(): void {
  if (stock) overrideGradient(stock);
}
