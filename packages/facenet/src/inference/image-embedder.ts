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

/** What a TensorFlow.js model needs to embed: a function of the input batch, and how to release it. */
export interface TfjsRunner {
  architecture: string;
  imageSize: number;
  embeddingDim: number;
  /** Input [N, S, S, 3] to embeddings [N, D]; run inside tf.tidy. */
  run: (input: tf.Tensor4D) => tf.Tensor2D;
  dispose: () => void;
}

/** An ImageEmbedder over a TensorFlow.js model of any kind, on the calling thread and the current backend. */
export function tfjsRunnerEmbedder(r: TfjsRunner): ImageEmbedder {
  const size = r.imageSize;
  return {
    engine: 'tfjs',
    architecture: r.architecture,
    imageSize: size,
    embeddingDim: r.embeddingDim,
    async embed(pixels, count) {
      const out = tf.tidy(() => r.run(tf.tensor4d(pixels, [count, size, size, 3])));
      try {
        return (await out.data()) as Float32Array;
      } finally {
        out.dispose();
      }
    },
    async dispose() {
      r.dispose();
    },
  };
}

/** TensorFlow.js on the current backend: the training graph in inference mode, on the calling thread. */
export function tfjsEmbedder(model: EmbeddingModel, o: { owns?: boolean } = {}): ImageEmbedder {
  return tfjsRunnerEmbedder({
    architecture: model.config.architecture,
    imageSize: model.config.imageSize,
    embeddingDim: model.config.embeddingDim,
    run: (input) => model.forward(input, false),
    dispose: () => {
      if (o.owns) model.dispose();
    },
  });
}
