import { FaceSource, FilesSource, holdoutPairs, imagesOfPairsPeople, PairSet, pairSetFromFile, readPairsFile } from '@facenet/core';
import { datasetKind, JobSpec, trainingSource } from '@facenet/protocol';
import { EvaluationSetError } from './errors';

/** The pairs a job's checkpoints are scored on, and where their images come from. */
export interface EvaluationSet {
  kind: 'holdout' | 'pairs-file';
  set: PairSet;
  source: FaceSource;
  /**
   * Every image of the evaluation's identities with its identity, for VAL at FAR over all pairs
   * (the listed pairs alone cannot resolve a FAR of 1e-3). Read from `source`.
   */
  everyImage: { keys: string[]; labels: number[] };
}

/**
 * The job's evaluation pairs: its pairs file (LFW format) when the spec names one, else pairs
 * among the identities held out of training (the same seeded split the coordinator trains
 * without), from the job's data source (`dataSource`: read from the index stored at admission).
 */
export async function evaluationSetFor(spec: JobSpec, seed: number, dataSource: () => Promise<FaceSource>): Promise<EvaluationSet> {
  const e = spec.evaluation;
  if (e.pairs && e.images) {
    const file = readPairsFile(e.pairs);
    const folds = e.folds && new Set(e.folds.map((f) => f - 1));
    const set = pairSetFromFile(file, e.images, e.ext, folds);
    if (set.pairs.length === 0) throw new EvaluationSetError(`${e.pairs} has no pairs in folds ${e.folds?.join(',')}`);
    const crop = e.cropFraction ?? datasetKind(spec.dataset).cropFraction(spec.dataset);
    const everyImage = imagesOfPairsPeople(file, e.images, folds);
    return { kind: 'pairs-file', set, source: new FilesSource([...new Set([...set.keys, ...everyImage.keys])], crop), everyImage };
  }
  if (spec.holdout < 2)
    throw new EvaluationSetError('the job holds out fewer than 2 identities and names no evaluation.pairs file: nothing to evaluate on');
  const source = await dataSource();
  const { holdout } = trainingSource(source, spec.holdout, seed);
  const set = holdoutPairs(source.index, holdout, { maxDifferentPairs: e.maxDifferentPairs, seed });
  const labels = holdout.flatMap((id, label) => (source.index.images[id] ?? []).map(() => label));
  return { kind: 'holdout', set, source, everyImage: { keys: set.keys, labels } };
}
