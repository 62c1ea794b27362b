import { EmbeddingModel, CheckpointManifest, loadModel, resolveCheckpointDir, selectBackend } from '@facenet/core';
import { Output } from './output';

/** Picks the backend and loads a model from a checkpoint or run folder. */
export async function loadModelForCommand(checkpoint: string, backend: string | undefined, out: Output): Promise<{ model: EmbeddingModel; manifest: CheckpointManifest; dir: string }> {
  await selectBackend({ backend, log: (l) => out.info(l) });
  const dir = resolveCheckpointDir(checkpoint);
  const { model, manifest } = await loadModel(dir);
  out.info(`[facenet] model: ${manifest.model.architecture} ${manifest.model.imageSize}px from ${dir} (step ${manifest.step})`);
  return { model, manifest, dir };
}

/** The model's verification threshold: explicit flag, else the checkpoint's last evaluation. */
export function thresholdOf(manifest: CheckpointManifest, flag: number | undefined): { threshold: number; from: string } {
  if (flag !== undefined) return { threshold: flag, from: '--threshold' };
  if (manifest.evaluation) return { threshold: manifest.evaluation.threshold, from: `checkpoint evaluation at step ${manifest.evaluation.step}` };
  return { threshold: 1.1, from: 'default 1.1 (checkpoint has no evaluation; pass --threshold)' };
}
