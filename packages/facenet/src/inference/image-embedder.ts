import { tf } from '../backend/tf';
import { EmbeddingModel } from '../model/embedding-model';

export const INFERENCE_ENGINES = ['auto', 'onnxruntime', 'tfjs'] as const;
export type InferenceEngineChoice = (typeof INFERENCE_ENGINES)[number];

/**
 * What every service that embeds needs of a model: images [N, S, S, 3] in [-1, 1], row-major,
 * to L2-normalised embeddings [N, D]. Two engines implement it: ONNX Runtime on a thread of its
 * own (the exported inference graph, batch norm folded) and TensorFlow.js (the training graph).
 */
export interface ImageEmbedder {
  readonly engine: 'onnxruntime' | 'tfjs';
  readonly architecture: string;
  readonly imageSize: number;
  readonly embeddingDim: number;
  /** Embeds `count` images. May take ownership of `pixels` (transferred to a thread): do not reuse it. */
  embed(pixels: Float32Array, count: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

/** TensorFlow.js on the current backend: the training graph in inference mode, on the calling thread. */
export function tfjsEmbedder(model: EmbeddingModel, o: { owns?: boolean } = {}): ImageEmbedder {
  const size = model.config.imageSize;
  return {
    engine: 'tfjs',
    architecture: model.config.architecture,
    imageSize: size,
    embeddingDim: model.config.embeddingDim,
    async embed(pixels, count) {
      const out = tf.tidy(() => model.forward(tf.tensor4d(pixels, [count, size, size, 3]), false));
      try {
        return (await out.data()) as Float32Array;
      } finally {
        out.dispose();
      }
    },
    async dispose() {
      if (o.owns) model.dispose();
    },
  };
}
