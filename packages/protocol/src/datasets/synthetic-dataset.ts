import { SyntheticSource } from '@facenet/core';
import { z } from 'zod';
import type { DatasetKind } from './dataset-kind';

/** Built-in cartoon faces: the index is a formula of the spec, so there is nothing to scan or store. */
export const syntheticSchema = z
  .object({
    kind: z.literal('synthetic'),
    identities: z.number().int().min(2).max(100_000).default(60),
    imagesPerIdentity: z.number().int().min(2).max(1000).default(12),
    seed: z.number().int().default(7),
  })
  .strict()
  .refine((d) => d.identities * d.imagesPerIdentity <= 2_000_000, {
    message: 'identities x imagesPerIdentity must not exceed 2000000',
    path: ['identities'],
  });

export type SyntheticDatasetSpec = z.infer<typeof syntheticSchema>;

export const syntheticDataset: DatasetKind<SyntheticDatasetSpec> = {
  kind: 'synthetic',
  schema: syntheticSchema,
  errorPath: 'dataset',
  files: () => [],
  source: (spec) => new SyntheticSource({ identities: spec.identities, imagesPerIdentity: spec.imagesPerIdentity, seed: spec.seed }),
  cropFraction: () => 1,
};
