import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  ExportMetadata,
  exportedOnnxEmbedder,
  ImageEmbedder,
  readExportMetadata,
  readTfjsExport,
  tf,
  tfjsRunnerEmbedder,
} from '@facenet/core';
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
  return {
    metadata,
    embedder: tfjsRunnerEmbedder({
      architecture: `${metadata.model.architecture} (exported)`,
      imageSize: metadata.model.imageSize,
      embeddingDim: metadata.model.embeddingDim,
      run: (input) => model.execute(input) as tf.Tensor2D,
      dispose: () => model.dispose(),
    }),
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
