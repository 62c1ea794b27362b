import { tf } from '../backend/tf';

export const CLASSIFICATION_HEADS = ['softmax', 'cosface'] as const;
export type ClassificationHead = (typeof CLASSIFICATION_HEADS)[number];

export interface ClassificationLossResult {
  /** Mean cross-entropy over the batch, differentiable w.r.t. embeddings and class weights. */
  loss: tf.Scalar;
  /** Fraction of images whose true class has the largest cosine (before the margin). */
  accuracy: number;
}

/**
 * Cross-entropy over identities on cosine logits: the embedding is already on the unit sphere,
 * so each class weight is normalised too and logit_j = scale * (cos(e, w_j) - margin * [j = y]).
 * 'softmax' is the normalised softmax (margin 0; NormFace): a plain linear softmax cannot reach
 * confident logits from unit-norm inputs, hence the fixed scale. 'cosface' subtracts an additive
 * cosine margin from the true class (CosFace / AM-softmax), which pulls each identity's faces
 * together by a margin as the triplet loss does.
 */
export function classificationLoss(
  embeddings: tf.Tensor2D,
  labels: Int32Array,
  classWeights: tf.Tensor2D,
  head: ClassificationHead,
  scale: number,
  margin: number,
  /** The accuracy when already read (backends without synchronous reads); else read here. */
  knownAccuracy?: number,
): ClassificationLossResult {
  const classes = classWeights.shape[1];
  const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), classes);
  const unit = tf.div(classWeights, tf.sqrt(tf.add(tf.sum(tf.square(classWeights), 0, true), 1e-12)));
  const cosine = tf.matMul(embeddings, unit) as tf.Tensor2D;
  const accuracy = knownAccuracy ?? accuracyOf(tf.argMax(cosine, 1).dataSync(), labels);
  const m = head === 'cosface' ? margin : 0;
  const logits = tf.mul(scale, m > 0 ? tf.sub(cosine, tf.mul(m, oneHot)) : cosine);
  // log-sum-exp minus the true logit, written out: tfjs-wasm's softmaxCrossEntropy kernel leaks two tensors per call.
  const loss = tf.mean(tf.sub(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, oneHot), 1))) as tf.Scalar;
  return { loss, accuracy };
}

/** Fraction of predicted classes equal to the labels. */
export function accuracyOf(predicted: ArrayLike<number>, labels: ArrayLike<number>): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  return labels.length ? correct / labels.length : 0;
}

/** The classes the cosine head predicts ([n]), as a tensor to read asynchronously. */
export function predictedClasses(embeddings: tf.Tensor2D, classWeights: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const unit = tf.div(classWeights, tf.sqrt(tf.add(tf.sum(tf.square(classWeights), 0, true), 1e-12)));
    return tf.argMax(tf.matMul(embeddings, unit), 1) as tf.Tensor1D;
  });
}
