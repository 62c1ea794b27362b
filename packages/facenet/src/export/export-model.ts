import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CheckpointManifest } from '../checkpoint/checkpoint';
import { EmbeddingModel } from '../model/embedding-model';
import { traceInferenceGraph } from './inference-graph';
import { ONNX_OPSET, writeOnnx } from './onnx-writer';
import { writeTfjs } from './tfjs-writer';

export const EXPORT_FORMATS = ['onnx', 'tfjs'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

const PRODUCER_VERSION = '0.1.0';

/** Everything a runtime outside this project needs to feed the model and read its output. */
export interface ExportMetadata {
  format: 'facenet-export/1';
  model: CheckpointManifest['model'];
  input: { name: 'input'; layout: 'NHWC'; shape: ['N', number, number, 3]; channels: 'RGB' };
  output: { name: 'embeddings'; shape: ['N', number]; norm: 'L2 = 1'; distance: 'squared euclidean' };
  /** How `facenet embed` turns an image file into the input, in this order. */
  preprocessing: { cropFraction: number; crop: string; resize: string; scale: string };
  checkpoint: { step: number; createdAt: string; weightsSha256: string };
  /** Squared-distance threshold for "same person" from the checkpoint's last evaluation, if any. */
  verification?: { threshold: number; accuracy: number; step: number };
}

export function exportMetadata(manifest: CheckpointManifest): ExportMetadata {
  const s = manifest.model.imageSize;
  return {
    format: 'facenet-export/1',
    model: manifest.model,
    input: { name: 'input', layout: 'NHWC', shape: ['N', s, s, 3], channels: 'RGB' },
    output: { name: 'embeddings', shape: ['N', manifest.model.embeddingDim], norm: 'L2 = 1', distance: 'squared euclidean' },
    preprocessing: {
      cropFraction: manifest.preprocessing?.cropFraction ?? 1,
      crop: 'the centred square covering cropFraction of the shorter side',
      resize: `to ${s}x${s} (facenet uses libvips' lanczos3 through sharp)`,
      scale: 'value = pixel / 127.5 - 1 (0..255 -> [-1, 1])',
    },
    checkpoint: { step: manifest.step, createdAt: manifest.createdAt, weightsSha256: manifest.weights.sha256 },
    ...(manifest.evaluation
      ? {
          verification: {
            threshold: manifest.evaluation.threshold,
            accuracy: manifest.evaluation.accuracy,
            step: manifest.evaluation.step,
          },
        }
      : {}),
  };
}

export interface ExportResult {
  format: ExportFormat;
  dir: string;
  files: { name: string; bytes: number }[];
  nodes: number;
}

/**
 * Writes `model` (restored from the checkpoint `manifest` describes) to `outDir` as ONNX
 * (model.onnx) or a TensorFlow.js graph model (model.json + weights), with facenet.json beside
 * it holding the metadata. Files are written to a temporary sibling and renamed into place, so
 * a reader never sees half an export.
 */
export async function exportModel(
  model: EmbeddingModel,
  manifest: CheckpointManifest,
  format: ExportFormat,
  outDir: string,
): Promise<ExportResult> {
  const graph = traceInferenceGraph(model);
  const metadata = exportMetadata(manifest);
  const files: { name: string; data: Uint8Array }[] = [
    { name: 'facenet.json', data: Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`) },
  ];
  if (format === 'onnx') {
    const props = {
      'facenet.metadata': JSON.stringify(metadata),
      'facenet.preprocessing': JSON.stringify(metadata.preprocessing),
      'facenet.opset': String(ONNX_OPSET),
    };
    files.push({ name: 'model.onnx', data: writeOnnx(graph, props, PRODUCER_VERSION) });
  } else {
    const m = writeTfjs(graph, { facenet: metadata }, PRODUCER_VERSION);
    files.push({ name: 'model.json', data: Buffer.from(JSON.stringify(m.modelJson)) }, { name: m.weightsFile, data: m.weights });
  }
  const dir = resolve(outDir);
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  for (const f of files) await writeFile(join(tmp, f.name), f.data);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
  return { format, dir, files: files.map((f) => ({ name: f.name, bytes: f.data.byteLength })), nodes: graph.nodes.length };
}
