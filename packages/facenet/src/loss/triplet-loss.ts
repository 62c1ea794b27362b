import { tf } from '../backend/tf';
import { SelectionStrategy, selectTriplets, TripletSelection } from './triplet-selection';

/** Squared L2 distances between all rows of `e` ([n, d] -> [n, n]), clamped at zero. */
export function pairwiseSquaredDistances(e: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const sq = tf.sum(tf.square(e), 1);
    // An explicit transpose: tfjs-wasm's matMul with transposeB is ~10x slower.
    const dot = tf.matMul(e, tf.transpose(e));
    return tf.relu(tf.add(tf.sub(tf.expandDims(sq, 1), tf.mul(2, dot)), tf.expandDims(sq, 0))) as tf.Tensor2D;
  });
}

/**
 * A selection made before the gradient pass, from the same embeddings' distances read
 * asynchronously: on backends that cannot read the GPU synchronously (webgpu), the discrete
 * choice cannot be made in the middle of the tape (selectBeforeTape in shard-gradients.ts).
 */
export interface Preselection {
  distances: Float32Array;
  selection: TripletSelection;
}

export interface TripletLossResult {
  /** Scalar tensor equal to the loss value, differentiable w.r.t. the embeddings. */
  loss: tf.Scalar;
  selection: TripletSelection;
}

/**
 * Triplet loss with online selection. The selection is read back to JS (it is a discrete
 * choice, not differentiated), then the loss is rebuilt as sum(D * W) + c: the same value as
 * the triplet loss, with the exact gradient dL/dD = W.
 */
export function tripletLoss(
  embeddings: tf.Tensor2D,
  labels: ArrayLike<number>,
  strategy: SelectionStrategy,
  margin = 0.2,
  preselected?: Preselection,
): TripletLossResult {
  const dist = pairwiseSquaredDistances(embeddings);
  const d = preselected?.distances ?? (dist.dataSync() as Float32Array);
  const selection = preselected?.selection ?? selectTriplets(d, labels, strategy, margin);
  let linear = 0;
  for (let i = 0; i < d.length; i++) linear += (d[i] as number) * (selection.weights[i] as number);
  const n = labels.length;
  const w = tf.tensor2d(selection.weights, [n, n]);
  const loss = tf.add(tf.sum(tf.mul(dist, w)), selection.loss - linear) as tf.Scalar;
  return { loss, selection };
}
