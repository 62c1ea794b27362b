/**
 * MaxPool's gradient as one pass over the input in JavaScript.
 *
 * Why: tfjs-wasm's MaxPoolGrad took 372-432 ms of an inception-small step (8 calls, batch 90,
 * 64 px) against PyTorch's ~21 ms. Its tie rule is also not the one TensorFlow, PyTorch and
 * tfjs's cpu backend use: it gives a tied window's gradient to the last maximum, and drops the
 * gradient of a window whose maximum is <= FLT_MIN (its search starts at FLT_MIN, not -inf).
 * Here every window's gradient goes to its first maximum in row-major order (strictly greater
 * than everything before it), and a window whose maximum is NaN or -Infinity passes nothing, as
 * tfjs-cpu's MaxPoolGrad.
 */
import { overrideGradient } from './override-gradient';
import { float32Values } from './tensor-memory';
import { tf } from './tf';

type PoolInfo = tf.backend_util.Conv2DInfo;

/**
 * dx for one max pool: each output's dy added at its window's first maximum. `y` is the forward
 * output (each window's maximum), `dx` zeros of x's size. The window is walked one offset at a
 * time over every output (long, contiguous inner loops over channels), and an output is claimed
 * by the first offset, in row-major order, whose value equals its maximum: the first-maximum
 * rule. Testing equality with the known maximum, rather than tracking a running one, leaves the
 * inner loop one rarely-taken branch (a running maximum mispredicts about half the time on
 * unordered values: measured ~2x slower).
 */
export function maxPoolGradFirstMax(
  x: Float32Array,
  y: Float32Array,
  dy: Float32Array,
  info: PoolInfo,
  dx: Float32Array = new Float32Array(x.length),
): Float32Array {
  const { batchSize, inHeight, inWidth, inChannels: C, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw, padInfo } = info;
  const claimed = new Uint8Array(dy.length);
  for (let i = 0; i < fh; i++) {
    for (let j = 0; j < fw; j++) {
      for (let b = 0; b < batchSize; b++) {
        for (let oy = 0; oy < outHeight; oy++) {
          const r = oy * strideHeight - padInfo.top + i;
          if (r < 0 || r >= inHeight) continue;
          for (let ox = 0; ox < outWidth; ox++) {
            const c = ox * strideWidth - padInfo.left + j;
            if (c < 0 || c >= inWidth) continue;
            const src = ((b * inHeight + r) * inWidth + c) * C;
            const dst = ((b * outHeight + oy) * outWidth + ox) * C;
            for (let k = 0; k < C; k++) {
              if (x[src + k] === y[dst + k] && claimed[dst + k] === 0 && y[dst + k] !== -Infinity) {
                claimed[dst + k] = 1;
                dx[src + k] = (dx[src + k] as number) + (dy[dst + k] as number);
              }
            }
          }
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
      const [x, y] = saved as [tf.Tensor4D, tf.Tensor4D];
      if ((backend !== 'wasm' && backend !== 'cpu') || x.dtype !== 'float32') return fallback!.gradFunc(dy, saved, attrs);
      const a = attrs as unknown as MaxPoolAttrs;
      const info = tf.backend_util.computePool2DInfo(x.shape, a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
      const g = dy as tf.Tensor4D;
      return {
        x: () => {
          const dx = tf.zeros(x.shape); // allocated first: the heap views below stay valid
          maxPoolGradFirstMax(float32Values(x), float32Values(y), float32Values(g), info, float32Values(dx));
          return dx;
        },
      };
    },
  });
}

/** Puts tfjs's own MaxPool gradient back. */
export function restoreMaxPoolGradient(): void {
  if (stock) overrideGradient(stock);
}
