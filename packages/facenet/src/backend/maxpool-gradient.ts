/**
 * MaxPool's gradient as one pass over the input in JavaScript.
 *
 * Why: tfjs-wasm's MaxPoolGrad took 372-432 ms of an inception-small step (8 calls, batch 90,
 * 64 px) against PyTorch's ~21 ms. Its tie rule is also not the one TensorFlow, PyTorch and
 * tfjs's cpu backend use: it gives a tied window's gradient to the last maximum, and drops the
 * gradient of a window whose maximum is <= FLT_MIN (its search starts at FLT_MIN, not -inf).
 * Here every window's gradient goes to its first maximum in row-major order (strictly greater
 * than everything before it), NaN never wins, and a window with no finite winner passes nothing,
 * exactly as tfjs-cpu's MaxPoolGrad. Pooling is channels-last, so the inner loop runs over
 * channels and reads memory in order.
 */
import { overrideGradient } from './override-gradient';
import { tf } from './tf';

type PoolInfo = tf.backend_util.Conv2DInfo;

/** dx for one max pool: each output's dy added at its window's first maximum. */
export function maxPoolGradFirstMax(x: Float32Array, dy: Float32Array, info: PoolInfo): Float32Array {
  const { batchSize, inHeight, inWidth, inChannels: C, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw, padInfo } = info;
  const dx = new Float32Array(x.length);
  const best = new Float32Array(C);
  const at = new Int32Array(C);
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const top = oy * strideHeight - padInfo.top;
      const r0 = Math.max(0, top);
      const r1 = Math.min(inHeight, top + fh);
      for (let ox = 0; ox < outWidth; ox++) {
        const left = ox * strideWidth - padInfo.left;
        const c0 = Math.max(0, left);
        const c1 = Math.min(inWidth, left + fw);
        best.fill(-Infinity);
        at.fill(-1);
        for (let r = r0; r < r1; r++) {
          for (let c = c0; c < c1; c++) {
            const base = ((b * inHeight + r) * inWidth + c) * C;
            for (let k = 0; k < C; k++) {
              const v = x[base + k] as number;
              if (v > (best[k] as number)) {
                best[k] = v;
                at[k] = base + k;
              }
            }
          }
        }
        const o = ((b * outHeight + oy) * outWidth + ox) * C;
        for (let k = 0; k < C; k++) {
          const i = at[k] as number;
          if (i >= 0) dx[i] = (dx[i] as number) + (dy[o + k] as number);
        }
      }
    }
  }
  return dx;
}

interface MaxPoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

let stock: tf.GradConfig | undefined;

/** Installs the one-pass MaxPool gradient (wasm and cpu; any other backend keeps the stock one). */
export function registerMaxPoolGradient(): void {
  stock ??= tf.getGradient('MaxPool');
  const fallback = stock;
  overrideGradient({
    kernelName: 'MaxPool',
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const backend = tf.getBackend();
      const [x] = saved as [tf.Tensor4D];
      if ((backend !== 'wasm' && backend !== 'cpu') || x.dtype !== 'float32') return fallback!.gradFunc(dy, saved, attrs);
      const a = attrs as unknown as MaxPoolAttrs;
      const info = tf.backend_util.computePool2DInfo(x.shape, a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
      const g = dy as tf.Tensor4D;
      return {
        x: () => tf.tensor4d(maxPoolGradFirstMax(x.dataSync() as Float32Array, g.dataSync() as Float32Array, info), x.shape),
      };
    },
  });
}

/** Puts tfjs's own MaxPool gradient back. */
export function restoreMaxPoolGradient(): void {
  if (stock) overrideGradient(stock);
}
