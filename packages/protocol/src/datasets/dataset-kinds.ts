import { FaceSource, splitHoldout, SubsetSource } from '@facenet/core';
import { z } from 'zod';
import type { DatasetKind } from './dataset-kind';
import type { DatasetIndexRef, StoredIndexes } from './dataset-index-ref';
import { folderDataset, folderSchema } from './folder-dataset';
import { manifestDataset, manifestSchema } from './manifest-dataset';
import { shardsDataset, shardsSchema } from './shards-dataset';
import { syntheticDataset, syntheticSchema } from './synthetic-dataset';

/** Where a distributed job's images come from; every worker must see the same data. */
export const datasetSchema = z.discriminatedUnion('kind', [syntheticSchema, folderSchema, manifestSchema, shardsSchema]);
export type DatasetSpec = z.infer<typeof datasetSchema>;

const KINDS = { synthetic: syntheticDataset, folder: folderDataset, manifest: manifestDataset, shards: shardsDataset };

/** The kind of a dataset spec: the one place that knows which kinds exist. */
export function datasetKind(spec: DatasetSpec): DatasetKind<DatasetSpec> {
  return KINDS[spec.kind] as unknown as DatasetKind<DatasetSpec>;
}

/** The image source a dataset spec names; `packed`: its index as stored at admission. */
export function sourceFromSpec(spec: DatasetSpec, packed?: Uint8Array): FaceSource {
  return datasetKind(spec).source(spec, packed);
}

/**
 * A job's image source from its stored index: I/O and a gunzip on the thread pool, then typed
 * views, so a service's event loop does no per-image work. Without a stored index (a record
 * admitted before indexes were stored, or a process with no Redis such as the CLI) the data is
 * indexed again (one directory read at a time for a folder).
 */
export async function jobDataSource(spec: DatasetSpec, ref?: DatasetIndexRef, indexes?: StoredIndexes): Promise<FaceSource> {
  const kind = datasetKind(spec);
  const packed = ref && indexes ? await indexes.get(ref.id) : await kind.pack?.(spec);
  return kind.source(spec, packed);
}

/** The training view of a job's data: everything but `holdout` identities (seeded choice). */
export function trainingSource(source: FaceSource, holdout: number, seed: number): { train: FaceSource; holdout: number[] } {
  if (holdout <= 0) return { train: source, holdout: [] };
  const split = splitHoldout(source.index, holdout, seed);
  return { train: new SubsetSource(source, split.train, 'training split'), holdout: split.holdout };
}
