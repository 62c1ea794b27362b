import { DatasetError, ManifestSource, packManifest, unpackIndex } from '@facenet/core';
import { z } from 'zod';
import type { DatasetKind } from './dataset-kind';

/** A CSV or JSON Lines file listing each image and its identity (see ManifestSource). */
export const manifestSchema = z
  .object({
    kind: z.literal('manifest'),
    path: z.string().min(1),
    cropFraction: z.number().gt(0).lte(1).default(1),
    exclude: z.array(z.string()).default([]),
  })
  .strict();

export type ManifestDatasetSpec = z.infer<typeof manifestSchema>;

export const manifestDataset: DatasetKind<ManifestDatasetSpec> = {
  kind: 'manifest',
  schema: manifestSchema,
  errorPath: 'dataset.path',
  files: (spec) => [{ path: 'dataset.path', value: spec.path }],
  pack: (spec, o) => packManifest(spec.path, o),
  source(spec, packed) {
    // Reading millions of lines belongs to admission, never to a service's event loop.
    if (!packed) throw new DatasetError(`manifest ${spec.path}: the job has no stored index (admitted before manifests were indexed?)`);
    return new ManifestSource(spec.path, unpackIndex(packed, ManifestSource.keyPrefix(spec.path)), {
      cropFraction: spec.cropFraction,
      exclude: spec.exclude,
    });
  },
  cropFraction: (spec) => spec.cropFraction,
};
