import { DatasetError, objectStoreFor, packShardIndex, ShardsSource, unpackIndex } from '@facenet/core';
import { z } from 'zod';
import type { DatasetKind } from './dataset-kind';

/**
 * Tar shards and their index.jsonl (`facenet data pack`), at a folder path, an http(s):// URL
 * (read with range requests) or an s3:// URL. Remote reads go through each process's disk cache.
 */
export const shardsSchema = z
  .object({
    kind: z.literal('shards'),
    url: z.string().min(1),
    cropFraction: z.number().gt(0).lte(1).default(1),
    exclude: z.array(z.string()).default([]),
  })
  .strict();

export type ShardsDatasetSpec = z.infer<typeof shardsSchema>;

export const shardsDataset: DatasetKind<ShardsDatasetSpec> = {
  kind: 'shards',
  schema: shardsSchema,
  errorPath: 'dataset.url',
  files: (spec) => [{ path: 'dataset.url', value: spec.url }],
  // Admission reads the index once, uncached: the coordinator never reads images.
  pack: (spec, o) => packShardIndex(objectStoreFor(spec.url, null), o),
  source(spec, packed) {
    if (!packed) throw new DatasetError(`shards at ${spec.url}: the job has no stored index (admitted before shards were indexed?)`);
    return new ShardsSource(objectStoreFor(spec.url), unpackIndex(packed), { cropFraction: spec.cropFraction, exclude: spec.exclude });
  },
  cropFraction: (spec) => spec.cropFraction,
};
