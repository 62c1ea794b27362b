/**
 * The operations the zoo's networks are made of. The zoo is written against this interface, not
 * against tensors, so one description of a network both runs (LayerBuilder: tfjs tensors) and is
 * traced into a portable inference graph (export/graph-tracer.ts: ONNX, TensorFlow.js). An
 * architecture that needs another operation adds it here, and each builder then has to say how
 * it runs and how it exports.
 *
 * Activations are NHWC (batch, height, width, channels) or [batch, features].
 */
export interface NetBuilder<T> {
  /** Channels of an NHWC activation (features of a 2-D one). */
  channels(x: T): number;
  /** conv ('same' padding, no bias) -> batch norm (-> relu). */
  convBn(name: string, x: T, filters: number, kernel: number, stride: number, relu: boolean): T;
  /** conv -> batch norm -> relu, the unit every zoo model is made of. */
  convBnRelu(name: string, x: T, filters: number, kernel: number, stride?: number): T;
  /** Max pooling with 'same' padding. */
  maxPool(x: T, size: number, stride: number): T;
  /** Concatenation along channels. */
  concat(xs: T[]): T;
  /** relu(a + b): a residual connection. */
  addRelu(a: T, b: T): T;
  /** Mean over height and width: NHWC -> [batch, channels]. */
  globalAvgPool(x: T): T;
  /** x W + b. */
  dense(name: string, x: T, units: number): T;
  /** Projects onto the unit sphere: the FaceNet embedding constraint ||f(x)||2 = 1. */
  l2Normalize(x: T): T;
}
