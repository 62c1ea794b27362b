import { tf } from '../backend/tf';
import { ParamStore } from './param-store';

/** Batch statistics of one forward pass in training mode, keyed by the batch-norm layer name. */
export type BatchNormStats = Map<string, { mean: tf.Tensor1D; variance: tf.Tensor1D }>;

const BN_EPSILON = 1e-3;

/**
 * Builds a network as plain code: each call creates its parameters on first use (from the
 * store's seed) and reuses them afterwards. Batch norm is written with elementwise ops rather
 * than tf.batchNorm because tfjs's batch-norm gradient uses `tile`, which is slow on wasm.
 */
export class LayerBuilder {
  constructor(
    private readonly store: ParamStore,
    private readonly training: boolean,
    /** Receives batch statistics in training mode (kept tensors; the caller disposes them). */
    private readonly bnStats?: BatchNormStats,
  ) {}

  conv(name: string, x: tf.Tensor4D, filters: number, kernel: number, stride = 1): tf.Tensor4D {
    const inC = x.shape[3];
    const w = this.store.param(`${name}/w`, [kernel, kernel, inC, filters], 'he', kernel * kernel * inC);
    return tf.conv2d(x, w as tf.Tensor4D, stride, 'same');
  }

  batchNorm(name: string, x: tf.Tensor4D | tf.Tensor2D): tf.Tensor {
    const c = x.shape[x.rank - 1] as number;
    const gamma = this.store.param(`${name}/gamma`, [c], 'ones');
    const beta = this.store.param(`${name}/beta`, [c], 'zeros');
    const movingMean = this.store.stateVar(`${name}/moving_mean`, [c], 'zeros');
    const movingVar = this.store.stateVar(`${name}/moving_variance`, [c], 'ones');
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

  /** conv -> batch norm -> relu, the unit every zoo model is made of. */
  convBnRelu(name: string, x: tf.Tensor4D, filters: number, kernel: number, stride = 1): tf.Tensor4D {
    return tf.relu(this.batchNorm(`${name}/bn`, this.conv(name, x, filters, kernel, stride))) as tf.Tensor4D;
  }

  dense(name: string, x: tf.Tensor2D, units: number): tf.Tensor2D {
    const inF = x.shape[1];
    const w = this.store.param(`${name}/w`, [inF, units], 'glorot', inF, units);
    const b = this.store.param(`${name}/b`, [units], 'zeros');
    return tf.add(tf.matMul(x, w as tf.Tensor2D), b);
  }

  maxPool(x: tf.Tensor4D, size: number, stride: number): tf.Tensor4D {
    return tf.maxPool(x, size, stride, 'same');
  }

  globalAvgPool(x: tf.Tensor4D): tf.Tensor2D {
    return tf.mean(x, [1, 2]) as tf.Tensor2D;
  }

  /** Projects onto the unit sphere: the FaceNet embedding constraint ||f(x)||2 = 1. */
  l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
    return tf.div(x, tf.sqrt(tf.add(tf.sum(tf.square(x), 1, true), 1e-10)));
  }
}
