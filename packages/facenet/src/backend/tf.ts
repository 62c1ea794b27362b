/**
 * The one place that loads TensorFlow.js. Every other module imports `tf` from here, so the
 * backend choice (and our kernel overrides) apply everywhere and only one engine is loaded.
 */
import * as tf from '@tensorflow/tfjs';

export { tf };
export type Tensor = tf.Tensor;
export type Variable = tf.Variable;
