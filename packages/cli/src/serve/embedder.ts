import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ExportMetadata, exportedOnnxEmbedder, ImageEmbedder, readExportMetadata, readTfjsExport, tf } from '@facenet/core';
import type { TfjsExportFiles } from '@facenet/core';
import { UsageError } from '../errors';

/** A TensorFlow.js graph model written by `facenet export --format tfjs` (model.json, its weights, facenet.json). */
async function tfjsExportEmbedder(dir: string): Promise<{ embedder: ImageEmbedder; metadata: ExportMetadata }> {
  let metadata: ExportMetadata;
  let files: TfjsExportFiles;
  try {
    metadata = await readExportMetadata(dir);
    files = await readTfjsExport(dir);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const model = await tf.loadGraphModel(tf.io.fromMemory(files));
  const size = metadata.model.imageSize;
  return {
    metadata,
    embedder: {
      engine: 'tfjs',
      architecture: `${metadata.model.architecture} (exported)`,
      imageSize: size,
      embeddingDim: metadata.model.embeddingDim,
      async embed(pixels, count) {
        const out = tf.tidy(() => model.execute(tf.tensor4d(pixels, [count, size, size, 3])) as tf.Tensor2D);
        try {
          return (await out.data()) as Float32Array;
        } finally {
          out.dispose();
        }
      },
      async dispose() {
        model.dispose();
      },
    },
  };
}

/**
 * A model written by `facenet export`: an ONNX export (model.onnx) runs on ONNX Runtime, a
 * TensorFlow.js export (model.json) on TensorFlow.js; `engine` may only confirm that choice.
 */
export async function exportedEmbedder(
  dir: string,
  engine: string | undefined,
  log: (line: string) => void,
): Promise<{ embedder: ImageEmbedder; metadata: ExportMetadata }> {
  const onnx = existsSync(join(dir, 'model.onnx'));
  const wanted = onnx ? 'onnxruntime' : 'tfjs';
  if (engine && engine !== 'auto' && engine !== wanted)
    throw new UsageError(`--engine ${engine}: ${dir} is ${onnx ? 'an ONNX' : 'a TensorFlow.js'} export, which runs on ${wanted}`);
  if (!onnx) return tfjsExportEmbedder(dir);
  try {
    return await exportedOnnxEmbedder(dir, { log });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
