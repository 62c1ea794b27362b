import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EmbeddingModel, ExportMetadata, tf } from '@facenet/core';
import { UsageError } from '../errors';

/** What the service needs of a model: its input size, and images [N, S, S, 3] in [-1, 1] -> embeddings [N, D]. */
export interface Embedder {
  architecture: string;
  imageSize: number;
  embeddingDim: number;
  embed(images: tf.Tensor4D): tf.Tensor2D;
  dispose(): void;
}

export function checkpointEmbedder(model: EmbeddingModel): Embedder {
  return {
    architecture: model.config.architecture,
    imageSize: model.config.imageSize,
    embeddingDim: model.config.embeddingDim,
    embed: (images) => model.embed(images),
    dispose: () => model.dispose(),
  };
}

/** A TensorFlow.js graph model written by `facenet export --format tfjs` (model.json, its weights, facenet.json). */
export async function exportedEmbedder(dir: string): Promise<{ embedder: Embedder; metadata: ExportMetadata }> {
  let json: { modelTopology: object; weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[]; format?: string };
  let metadata: ExportMetadata;
  try {
    json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    metadata = JSON.parse(await readFile(join(dir, 'facenet.json'), 'utf8'));
  } catch (err) {
    throw new UsageError(`${dir} is not a TensorFlow.js export of facenet (model.json and facenet.json): ${(err as Error).message}`);
  }
  const group = json.weightsManifest[0];
  if (!group || group.paths.length !== 1) throw new UsageError(`${dir}/model.json: expected one weights file, as facenet export writes`);
  const weights = await readFile(join(dir, group.paths[0] as string));
  const model = await tf.loadGraphModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: group.weights,
      weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength) as ArrayBuffer,
      format: json.format,
    }),
  );
  return {
    metadata,
    embedder: {
      architecture: `${metadata.model.architecture} (exported)`,
      imageSize: metadata.model.imageSize,
      embeddingDim: metadata.model.embeddingDim,
      embed: (images) => model.execute(images) as tf.Tensor2D,
      dispose: () => model.dispose(),
    },
  };
}
