import { FaceSource } from '../data/face-source';
import { SkippedImage } from '../data/load-images';
import { EmbeddingModel } from '../model/embedding-model';
import { pairDistances } from './distances';
import { embedImages } from './embed-images';
import { PairSet } from './holdout-pairs';
import { evaluateFolds, FoldReport } from './verification';

export interface EvaluationResult {
  report: FoldReport;
  /** Pair distances and labels of the pairs that could be scored (for ROC plots). */
  distances: Float32Array;
  same: boolean[];
  /** Pairs dropped because an image failed to decode. */
  droppedPairs: number;
  skipped: SkippedImage[];
}

/** Embeds a pair set's images and scores it with the N-fold protocol (VAL at FAR = farTarget). */
export async function evaluatePairs(
  model: EmbeddingModel, source: FaceSource, set: PairSet, farTarget = 1e-3,
  onProgress?: (done: number, total: number) => void,
): Promise<EvaluationResult> {
  const e = await embedImages(model, source, set.keys, { onProgress });
  const kept = set.pairs.map((p, i) => i).filter((i) => {
    const [a, b] = set.pairs[i] as [number, number];
    return e.ok[a] && e.ok[b];
  });
  const distances = pairDistances(e.embeddings, e.dim, kept.map((i) => set.pairs[i] as [number, number]));
  const same = kept.map((i) => set.same[i] as boolean);
  const fold = kept.map((i) => set.fold[i] as number);
  return { report: evaluateFolds(distances, same, fold, farTarget), distances, same, droppedPairs: set.pairs.length - kept.length, skipped: e.skipped };
}
