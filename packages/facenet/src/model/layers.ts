import { tf } from '../backend/tf';
import { batchNormTraining } from '../backend/batch-norm';
import { projectKernelsInstalled } from '../backend/project-kernels';
import { NetBuilder } from './net-builder';
import { ParamStore } from './param-store';

/** Batch statistics of one forward pass in training mode, keyed by the batch-norm layer name. */
export type BatchNormStats = Map<string, { mean: tf.Tensor1D; variance: tf.Tensor1D }>;

const BN_EPSILON = 1e-3;

/**
 * conv -> batch norm with the moving statistics folded in, for inference and export:
 * w' = w * gamma / sigma, b' = beta - mean * gamma / sigma (w is [k, k, in, out]).
 */
export function foldedConvBn(
  store: ParamStore,
  name: string,
  inC: number,
  filters: number,
  kernel: number,
): { filter: tf.Tensor4D; bias: tf.Tensor1D } {
  return tf.tidy(() => {
    const w = store.param(`${name}/w`, [kernel, kernel, inC, filters], 'he', kernel * kernel * inC);
    const bn = `${name}/bn`;
    const gamma = store.param(`${bn}/gamma`, [filters], 'ones');
    const beta = store.param(`${bn}/beta`, [filters], 'zeros');
    const mean = store.stateVar(`${bn}/moving_mean`, [filters], 'zeros');
    const variance = store.stateVar(`${bn}/moving_variance`, [filters], 'ones');
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(variance, BN_EPSILON)));
    return { filter: tf.mul(w, scale) as tf.Tensor4D, bias: tf.sub(beta, tf.mul(mean, scale)) as tf.Tensor1D };
  });
}

/** A dense layer's weight [in, units] and bias [units]. */
export function denseParams(store: ParamStore, name: string, inF: number, units: number): { w: tf.Variable; b: tf.Variable } {
  return { w: store.param(`${name}/w`, [inF, units], 'glorot', inF, units), b: store.param(`${name}/b`, [units], 'zeros') };
}

/**
 * Builds a network as plain code: each call creates its parameters on first use (from the
 * store's seed) and reuses them afterwards. In training, batch norm is the project's one-op
 * version (backend/batch-norm.ts) where the project's kernels are installed (wasm, cpu), and
 * elementwise ops elsewhere (tfjs's own batch-norm gradient uses `tile`, slow on wasm). In
 * inference, conv -> batch norm (-> relu) is one fused convolution with the moving statistics
 * folded into its filter and bias.
 */
export class LayerBuilder implements NetBuilder<tf.Tensor> {
  constructor(
    private readonly store: ParamStore,
    private readonly training: boolean,
    /** Receives batch statistics in training mode (kept tensors; the caller disposes them). */
    private readonly bnStats?: BatchNormStats,
  ) {}

  channels(x: tf.Tensor): number {
    return x.shape[x.rank - 1] as number;
  }

  conv(name: string, x: tf.Tensor4D, filters: number, kernel: number, stride = 1): tf.Tensor4D {
    const inC = x.shape[3];
    const w = this.store.param(`${name}/w`, [kernel, kernel, inC, filters], 'he', kernel * kernel * inC);
    return tf.conv2d(x, w as tf.Tensor4D, stride, 'same');
  }

  batchNorm(name: string, x: tf.Tensor4D | tf.Tensor2D): tf.Tensor {
    const c = x.shape[x.rank - 1] as number;
    const gamma = this.store.param(`${name}/gamma`, [c], 'ones') as tf.Tensor1D;
    const beta = this.store.param(`${name}/beta`, [c], 'zeros') as tf.Tensor1D;
    const movingMean = this.store.stateVar(`${name}/moving_mean`, [c], 'zeros');
    const movingVar = this.store.stateVar(`${name}/moving_variance`, [c], 'ones');
    if (this.training && projectKernelsInstalled()) {
      const r = batchNormTraining(x, gamma, beta, BN_EPSILON);
      if (this.bnStats) this.bnStats.set(name, { mean: r.mean, variance: r.variance });
      else tf.dispose([r.mean, r.variance]);
      return r.y;
    }
    let mean: tf.Tensor;
    let variance: tf.Tensor;
    if (this.training) {
      const axes = x.rank === 4 ? [0, 1, 2] : [0];
      const m = tf.moments(x, axes);
      mean = m.mean;
      variance = m.variance;
      this.bnStats?.set(name, { mean: tf.keep(mean) as tf.Tensor1D, variance: tf.keep(variance) as tf.Tensor1D });
    } else {
      mean = movingMean;
      variance = movingVar;
    }
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(variance, BN_EPSILON)));
    return tf.add(tf.mul(tf.sub(x, mean), scale), beta);
  }

  /**
   * conv -> batch norm (-> relu). In inference the moving statistics fold into the filter and a
   * bias, w' = w * gamma / sigma, b' = beta - mean * gamma / sigma, and the three run as one fused
   * convolution: one pass over the activation instead of four.
   */
  convBn(name: string, x: tf.Tensor4D, filters: number, kernel: number, stride: number, relu: boolean): tf.Tensor4D {
    if (this.training) {
      const y = this.batchNorm(`${name}/bn`, this.conv(name, x, filters, kernel, stride)) as tf.Tensor4D;
      return relu ? (tf.relu(y) as tf.Tensor4D) : y;
    }
    const { filter, bias } = foldedConvBn(this.store, name, x.shape[3], filters, kernel);
    return tf.fused.conv2d({ x, filter, strides: stride, pad: 'same', bias, activation: relu ? 'relu' : 'linear' });
  }

  convBnRelu(name: string, x: tf.Tensor4D, filters: number, kernel: number, stride = 1): tf.Tensor4D {
    return this.convBn(name, x, filters, kernel, stride, true);
  }

  dense(name: string, x: tf.Tensor2D, units: number): tf.Tensor2D {
    const { w, b } = denseParams(this.store, name, x.shape[1], units);
    return tf.add(tf.matMul(x, w as tf.Tensor2D), b);
  }

  concat(xs: tf.Tensor4D[]): tf.Tensor4D {
    return tf.concat(xs, 3);
  }

  addRelu(a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D {
    return tf.relu(tf.add<tf.Tensor4D>(a, b));
  }

  maxPool(x: tf.Tensor4D, size: number, stride: number): tf.Tensor4D {
    return tf.maxPool(x, size, stride, 'same');
  }

  globalAvgPool(x: tf.Tensor4D): tf.Tensor2D {
    return tf.mean(x, [1, 2]) as tf.Tensor2D;
  }

  l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
    return tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-10)));
  }
}
