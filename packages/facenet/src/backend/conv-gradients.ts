/**
 * Conv2D gradients written as forward convolutions.
 *
 * Why: tfjs-backend-wasm has no Conv2DBackpropFilter kernel (training throws) and a slow
 * Conv2DBackpropInput; the cpu backend has both but they are naive loops. A forward Conv2D runs
 * on XNNPACK under wasm, so expressing both gradients as forward convolutions makes training
 * work and fast. As a bonus dilated convolutions get gradients (tfjs's stock gradient refuses).
 * Native backends (tfjs-node) keep their stock, fused gradient kernels.
 */
import { BackendError } from '../errors';
import { overrideGradient } from './override-gradient';
import { float32Values } from './tensor-memory';
import { tf } from './tf';

type Pair = [number, number];
type PadInfo = { top: number; bottom: number; left: number; right: number };
type ConvPad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

function pair(v: number | number[]): Pair {
  return typeof v === 'number' ? [v, v] : [v[0] ?? 1, v[1] ?? v[0] ?? 1];
}

function convInfo(xShape: number[], filterShape: number[], strides: Pair, dilations: Pair, pad: ConvPad) {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    dilations,
    pad as 'valid',
  );
}

/**
 * dW[i,j,c,o] = sum_{b,y,x} xpad[b, y*s + i*d, x*s + j*d, c] * dy[b,y,x,o]: a convolution of
 * x (channels as batch) with dy (batch as input channels), stride d and dilation s swapped.
 */
export function conv2dFilterGradient(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: Pair,
  dilations: Pair,
  padInfo: PadInfo,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [kh, kw] = filterShape;
    const xT = tf.transpose(x, [3, 1, 2, 0]); // [C, H, W, B]
    const dyT = tf.transpose(dy, [1, 2, 0, 3]); // [oh, ow, B, O]
    const pad: ConvPad = [
      [0, 0],
      [padInfo.top, padInfo.bottom],
      [padInfo.left, padInfo.right],
      [0, 0],
    ];
    const out = tf.conv2d(xT, dyT, dilations, pad as unknown as 'valid', 'NHWC', strides); // [C, >=kh, >=kw, O]
    const cropped = out.shape[1] === kh && out.shape[2] === kw ? out : tf.slice(out, [0, 0, 0, 0], [-1, kh, kw, -1]);
    return tf.transpose(cropped, [1, 2, 0, 3]);
  });
}

/** Places dy's rows and columns s apart with zeros between (the "stuffing" of a transposed conv). */
function zeroStuff(dy: tf.Tensor4D, strides: Pair): tf.Tensor4D {
  const [sh, sw] = strides;
  if (sh === 1 && sw === 1) return dy;
  const [b, oh, ow, o] = dy.shape;
  const rows = tf.reshape(
    tf.pad(tf.reshape(dy, [b * oh, 1, ow * o]), [
      [0, 0],
      [0, sh - 1],
      [0, 0],
    ]),
    [b, oh * sh, ow, o],
  );
  const cols = tf.reshape(
    tf.pad(tf.reshape(rows, [b * oh * sh * ow, 1, o]), [
      [0, 0],
      [0, sw - 1],
      [0, 0],
    ]),
    [b, oh * sh, ow * sw, o],
  );
  return tf.slice(cols, [0, 0, 0, 0], [b, (oh - 1) * sh + 1, (ow - 1) * sw + 1, o]) as tf.Tensor4D;
}

/** Pads (positive) or crops (negative) one spatial axis of an NHWC tensor. */
function padOrCrop(t: tf.Tensor4D, axis: 1 | 2, before: number, after: number): tf.Tensor4D {
  let r = t;
  if (before < 0 || after < 0) {
    const begin = [0, 0, 0, 0];
    const size = [-1, -1, -1, -1];
    begin[axis] = Math.max(0, -before);
    size[axis] = r.shape[axis] - Math.max(0, -before) - Math.max(0, -after);
    r = tf.slice(r, begin, size);
  }
  if (before > 0 || after > 0) {
    const p: [number, number][] = [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ];
    p[axis] = [Math.max(0, before), Math.max(0, after)];
    r = tf.pad(r, p);
  }
  return r;
}

/**
 * The filter flipped in both spatial axes with in and out channels swapped, [kh, kw, co, ci],
 * in one JS pass: tfjs-wasm's Reverse took 20 ms a step for these small tensors (profile).
 */
function flippedSwappedFilter(filter: tf.Tensor4D): tf.Tensor4D {
  const [kh, kw, ci, co] = filter.shape;
  const src = float32Values(filter);
  const out = new Float32Array(src.length);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const from = (i * kw + j) * ci * co;
      const to = ((kh - 1 - i) * kw + (kw - 1 - j)) * co * ci;
      for (let c = 0; c < ci; c++) for (let o = 0; o < co; o++) out[to + o * ci + c] = src[from + c * co + o] as number;
    }
  }
  return tf.tensor4d(out, [kh, kw, co, ci]);
}

/**
 * dx[h] = sum_i Z[h + pt - i*d] W[i] with Z the zero-stuffed dy: a stride-1, dilation-d forward
 * convolution of padded Z with the spatially flipped filter, in and out channels swapped.
 */
export function conv2dInputGradient(
  xShape: [number, number, number, number],
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  strides: Pair,
  dilations: Pair,
  padInfo: PadInfo,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [, H, W] = xShape;
    const [kh, kw] = filter.shape;
    const [dh, dw] = dilations;
    const z = zeroStuff(dy, strides);
    const top = (kh - 1) * dh - padInfo.top;
    const left = (kw - 1) * dw - padInfo.left;
    const bottom = H + (kh - 1) * dh - top - z.shape[1];
    const right = W + (kw - 1) * dw - left - z.shape[2];
    const zp = padOrCrop(padOrCrop(z, 1, top, bottom), 2, left, right);
    const flipped = flippedSwappedFilter(filter);
    return tf.conv2d(zp, flipped, 1, 'valid', 'NHWC', dilations);
  });
}

/**
 * A 1x1, stride-1, unpadded convolution is a matMul of the [N*H*W, C] view with the [C, O]
 * filter, so its gradients are matMuls too: dx = dy W^T and dW = x^T dy. On the inception
 * nets' 1x1 layers this is 2-4x faster than the transposed forward convolutions above, mostly
 * for the filter gradient (measured in bench/step-profile.ts). The smaller operand is the one
 * transposed (tfjs-wasm's matMul with a transposed operand flag is 5-10x slower than an explicit
 * transpose first, measured).
 */
export function pointwiseConvGradients(x: tf.Tensor4D, dy: tf.Tensor4D, filter: tf.Tensor4D): { dx: tf.Tensor4D; dw: tf.Tensor4D } {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const o = filter.shape[3];
    const rows = n * h * w;
    const x2 = tf.reshape(x, [rows, c]);
    const dy2 = tf.reshape(dy, [rows, o]);
    const w2 = tf.reshape(filter, [c, o]);
    const dx = tf.reshape(tf.matMul(dy2, tf.transpose(w2)), x.shape) as tf.Tensor4D;
    const dw2 = c <= o ? tf.matMul(tf.transpose(x2), dy2) : tf.transpose(tf.matMul(tf.transpose(dy2), x2));
    // Returned from the tidy, not kept: the tape (and its scope) must still own and free them.
    return { dx, dw: tf.reshape(dw2, filter.shape) as tf.Tensor4D };
  });
}

const isPointwise = (filter: tf.Tensor4D, strides: Pair, dilations: Pair, p: PadInfo) =>
  filter.shape[0] === 1 &&
  filter.shape[1] === 1 &&
  strides[0] === 1 &&
  strides[1] === 1 &&
  dilations[0] === 1 &&
  dilations[1] === 1 &&
  p.top === 0 &&
  p.bottom === 0 &&
  p.left === 0 &&
  p.right === 0;

let stock: tf.GradConfig | undefined;

/** Installs the forward-conv gradients for Conv2D on wasm and cpu; others keep the stock one. */
export function registerFastConvGradients(): void {
  stock ??= tf.getGradient('Conv2D');
  overrideGradient({
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const backend = tf.getBackend();
      if (backend !== 'wasm' && backend !== 'cpu' && stock) return stock.gradFunc(dy, saved, attrs);
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const a = attrs as unknown as { strides: number | number[]; dilations: number | number[]; pad: ConvPad; dataFormat: string };
      if (a.dataFormat !== 'NHWC') throw new BackendError(`Conv2D gradient: only NHWC is supported, got ${a.dataFormat}`);
      const strides = pair(a.strides);
      const dilations = pair(a.dilations ?? 1);
      const info = convInfo(x.shape, filter.shape, strides, dilations, a.pad);
      const g = dy as tf.Tensor4D;
      if (isPointwise(filter, strides, dilations, info.padInfo)) {
        const { dx, dw } = pointwiseConvGradients(x, g, filter);
        return { x: () => dx, filter: () => dw };
      }
      return {
        x: () => conv2dInputGradient(x.shape, g, filter, strides, dilations, info.padInfo),
        filter: () => conv2dFilterGradient(x, g, filter.shape, strides, dilations, info.padInfo),
      };
    },
  });
}

/** Puts tfjs's own Conv2D gradient back. */
export function restoreConvGradients(): void {
  if (stock) overrideGradient(stock);
}
