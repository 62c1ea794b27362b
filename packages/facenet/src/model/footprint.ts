import type { ModelConfig } from './embedding-model';
import type { ArchitectureName } from './zoo';

/**
 * Each architecture's size at width 1, measured with tf.profile over one forward pass
 * (test/unit/footprint.test.ts measures the real model again and holds these to it): the body's
 * trainable parameters (without the embedding layer), its feature width, and per input pixel of
 * one image the activations it keeps (floats) and its convolutions' FLOPs.
 */
const AT_WIDTH_1: Record<
  ArchitectureName,
  {
    bodyParameters: number;
    features: number;
    activationsPerPixel: number;
    flopsPerPixel: number;
    /** The largest single activation per input pixel: the stride-2 stem's output (16, 32, 32 channels over a quarter of the pixels). */
    largestPerPixel: number;
    /** The largest filter (floats): tiny's conv3, inception's 3x3 of 4e/5a, resnet's stage4 3x3. */
    largestFilter: number;
  }
> = {
  tiny: {
    bodyParameters: 23_696,
    features: 64,
    activationsPerPixel: 56.4,
    flopsPerPixel: 1_368,
    largestPerPixel: 4,
    largestFilter: 18_432,
  },
  'inception-small': {
    bodyParameters: 1_050_320,
    features: 448,
    activationsPerPixel: 239.2,
    flopsPerPixel: 12_938,
    largestPerPixel: 8,
    largestFilter: 165_888,
  },
  'resnet-small': {
    bodyParameters: 1_226_400,
    features: 256,
    activationsPerPixel: 370.3,
    flopsPerPixel: 31_152,
    largestPerPixel: 8,
    largestFilter: 589_824,
  },
};

export interface ModelFootprint {
  /** Trainable parameters, the embedding layer included. */
  parameters: number;
  /** Floats one image's forward pass produces (kept for the backward pass in training). */
  activationsPerImage: number;
  /** FLOPs of one image's forward pass (convolutions and the embedding layer). */
  flopsPerImage: number;
  /**
   * Floats of the largest single tensor per image (the input or the stem's output): a GPU must
   * bind a shard's worth of it as one buffer (WebGPU's maxStorageBufferBindingSize).
   */
  largestTensorPerImage: number;
  /** Floats of the largest weight tensor (a filter, or the embedding layer): its gradient is one buffer too. */
  largestWeight: number;
}

/**
 * What a model costs, from its configuration alone (no weights are built): admission uses it to
 * refuse a spec no worker can hold. Channel counts grow with `width`, so activations scale with
 * it and parameters and FLOPs with its square; below width 1 they are scaled linearly, which
 * overestimates (the first layer's input and the 4-channel floor do not shrink).
 */
export function modelFootprint(c: ModelConfig): ModelFootprint {
  const a = AT_WIDTH_1[c.architecture];
  const square = c.width >= 1 ? c.width * c.width : c.width;
  const features = Math.max(4, Math.round(a.features * c.width));
  const pixels = c.imageSize * c.imageSize;
  const embedding = features * c.embeddingDim + c.embeddingDim;
  return {
    parameters: Math.round(a.bodyParameters * square) + embedding,
    activationsPerImage: a.activationsPerPixel * Math.max(1, c.width) * pixels + 2 * features + 3 * c.embeddingDim,
    flopsPerImage: a.flopsPerPixel * square * pixels + 2 * features * c.embeddingDim,
    // Channel counts floor at 4 (zoo.ts), a quarter of the pixels at stride 2: at least 1 a pixel.
    largestTensorPerImage: Math.max(3, a.largestPerPixel * c.width) * pixels,
    largestWeight: Math.max(Math.round(a.largestFilter * square), embedding),
  };
}
