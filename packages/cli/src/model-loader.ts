import {
  createEmbedder,
  EmbeddingModel,
  CheckpointManifest,
  ImageEmbedder,
  InferenceEngineChoice,
  loadModel,
  resolveCheckpointDir,
  selectBackend,
} from '@facenet/core';
import { Output } from './output';

/**
 * Picks the backend and loads a model from a checkpoint or run folder, with the crop its images
 * need: `--crop-fraction` if given, else the one the model was trained with (in its checkpoint),
 * else the whole image. A model trained on 0.5 crops scores silently worse on whole images.
 */
export async function loadModelForCommand(
  checkpoint: string,
  backend: string | undefined,
  out: Output,
  cropFlag?: number,
): Promise<{ model: EmbeddingModel; manifest: CheckpointManifest; dir: string; cropFraction: number }> {
  await selectBackend({ backend, log: (l) => out.info(l) });
  const dir = resolveCheckpointDir(checkpoint);
  const { model, manifest } = await loadModel(dir);
  const trained = manifest.preprocessing?.cropFraction;
  const cropFraction = cropFlag ?? trained ?? 1;
  const from =
    cropFlag !== undefined
      ? trained !== undefined && trained !== cropFlag
        ? `--crop-fraction; the model was trained with ${trained}`
        : '--crop-fraction'
      : trained !== undefined
        ? 'as trained'
        : 'whole image; the checkpoint does not record its training crop';
  out.info(
    `[facenet] model: ${manifest.model.architecture} ${manifest.model.imageSize}px from ${dir} (step ${manifest.step}); crop fraction ${cropFraction} (${from})`,
  );
  return { model, manifest, dir, cropFraction };
}

/** The model's verification threshold: explicit flag, else the checkpoint's last evaluation. */
export function thresholdOf(manifest: CheckpointManifest, flag: number | undefined): { threshold: number; from: string } {
  if (flag !== undefined) return { threshold: flag, from: '--threshold' };
  if (manifest.evaluation)
    return { threshold: manifest.evaluation.threshold, from: `checkpoint evaluation at step ${manifest.evaluation.step}` };
  return { threshold: 1.1, from: 'default 1.1 (checkpoint has no evaluation; pass --threshold)' };
}

export const ENGINE_FLAG = [
  '--engine <name>',
  'inference engine: auto (ONNX Runtime, unless a GPU backend is selected), onnxruntime or tfjs',
] as const;

/** The embedder for a command's model; it owns the model (its dispose() disposes both). */
export function embedderForCommand(model: EmbeddingModel, engine: string | undefined, out: Output): Promise<ImageEmbedder> {
  return createEmbedder(model, { engine: engine as InferenceEngineChoice | undefined, ownsModel: true, log: (l) => out.info(l) });
}
