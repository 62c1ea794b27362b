import { FaceSource, FolderSource, IdentityIndex, readPairsFile, SubsetSource, splitHoldout, SyntheticSource } from '@facenet/core';
import { DatasetSpec } from './job-spec';

/** The people named in some folds (1-based) of an LFW-format pairs file. */
export function peopleOfPairsFolds(pairsFile: string, folds: number[]): string[] {
  const file = readPairsFile(pairsFile);
  const chosen = new Set(folds.map((f) => f - 1));
  return [...new Set(file.pairs.filter((p) => chosen.has(p.fold)).flatMap((p) => [p.a.name, p.b.name]))];
}

/** The image source a dataset spec names (`index`: a folder already scanned, see scanPeopleFolderAsync). */
export function sourceFromSpec(spec: DatasetSpec, index?: IdentityIndex): FaceSource {
  if (spec.kind === 'synthetic')
    return new SyntheticSource({ identities: spec.identities, imagesPerIdentity: spec.imagesPerIdentity, seed: spec.seed });
  const exclude = spec.excludePairsFolds
    ? [...spec.exclude, ...peopleOfPairsFolds(spec.excludePairsFolds.pairs, spec.excludePairsFolds.folds)]
    : spec.exclude;
  // A scanned index already holds every person: the exclusions apply to it as to a fresh scan.
  return new FolderSource(spec.path, { cropFraction: spec.cropFraction, exclude, index });
}

/** The training view of a job's data: everything but `holdout` identities (seeded choice). */
export function trainingSource(source: FaceSource, holdout: number, seed: number): { train: FaceSource; holdout: number[] } {
  if (holdout <= 0) return { train: source, holdout: [] };
  const split = splitHoldout(source.index, holdout, seed);
  return { train: new SubsetSource(source, split.train, 'training split'), holdout: split.holdout };
}
