import { FaceSource, FolderSource, IdentityIndex, SubsetSource, splitHoldout, SyntheticSource } from '@facenet/core';
import { DatasetSpec } from './job-spec';

/** The image source a dataset spec names (`index`: a folder already scanned, see scanPeopleFolderAsync). */
export function sourceFromSpec(spec: DatasetSpec, index?: IdentityIndex): FaceSource {
  return spec.kind === 'synthetic'
    ? new SyntheticSource({ identities: spec.identities, imagesPerIdentity: spec.imagesPerIdentity, seed: spec.seed })
    : new FolderSource(spec.path, { cropFraction: spec.cropFraction, exclude: spec.exclude, index });
}

/** The training view of a job's data: everything but `holdout` identities (seeded choice). */
export function trainingSource(source: FaceSource, holdout: number, seed: number): { train: FaceSource; holdout: number[] } {
  if (holdout <= 0) return { train: source, holdout: [] };
  const split = splitHoldout(source.index, holdout, seed);
  return { train: new SubsetSource(source, split.train, 'training split'), holdout: split.holdout };
}
