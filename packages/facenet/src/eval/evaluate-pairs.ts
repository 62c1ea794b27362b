import { FaceSource } from '../data/face-source';
import { SkippedImage } from '../data/load-images';
import { EmbeddingModel } from '../model/embedding-model';
import { pairDistances } from './distances';
import { embedImages, EmbeddedImages } from './embed-images';
import { dequantizeEmbeddings, fitQuantScale, quantizeEmbeddings } from './quantize';
import { PairSet } from './holdout-pairs';
import { evaluateFolds, FoldReport } from './verification';

export interface EvaluationResult {
  report: FoldReport;
  /** Pair distances and labels of the pairs that could be scored (for ROC plots). */
  distances: Float32Array;
  same: boolean[];
  /** Image indices (into the set's keys) of each scored pair, aligned with `distances`. */
  pairs: [number, number][];
  /** Pairs dropped because an image failed to decode. */
  droppedPairs: number;
  skipped: SkippedImage[];
}

/** Embeds a pair set's images and scores it with the N-fold protocol (VAL at FAR = farTarget). */
export interface EvaluatePairsOptions {
  /** @default 1e-3 */
  farTarget?: number;
  /** Score int8 (128-byte) embeddings instead of float32. @default false */
  int8?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export async function evaluatePairs(
  model: EmbeddingModel,
  source: FaceSource,
  set: PairSet,
  o: EvaluatePairsOptions = {},
): Promise<EvaluationResult> {
  const e = await embedImages(model, source, set.keys, { onProgress: o.onProgress });
  return scorePairs(e, set, o);
}

/** Scores pairs on already computed embeddings (rows that failed to decode are NaN and dropped). */
export function scorePairs(e: EmbeddedImages, set: PairSet, o: EvaluatePairsOptions = {}): EvaluationResult {
  if (o.int8) {
    const finite = e.embeddings.filter((v) => Number.isFinite(v));
    const scale = fitQuantScale(finite);
    const q = dequantizeEmbeddings(
      quantizeEmbeddings(
        e.embeddings.map((v) => (Number.isFinite(v) ? v : 0)),
        e.dim,
        scale,
      ),
    );
    e = { ...e, embeddings: q };
  }
  const kept = set.pairs
    .map((p, i) => i)
    .filter((i) => {
      const [a, b] = set.pairs[i] as [number, number];
      return e.ok[a] && e.ok[b];
    });
  const pairs = kept.map((i) => set.pairs[i] as [number, number]);
  const distances = pairDistances(e.embeddings, e.dim, pairs);
  const same = kept.map((i) => set.same[i] as boolean);
  const fold = kept.map((i) => set.fold[i] as number);
  return {
    report: evaluateFolds(distances, same, fold, o.farTarget ?? 1e-3),
    distances,
    same,
    pairs,
    droppedPairs: set.pairs.length - kept.length,
    skipped: e.skipped,
  };
}
