import { z } from 'zod';
import { SpecError } from '../errors';
import { trainOptionsSchema } from '../train/train-spec';

/** Where a distributed job's images come from; every worker must see the same files. */
export const datasetSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('synthetic'), identities: z.number().int().min(2).default(60), imagesPerIdentity: z.number().int().min(2).default(12), seed: z.number().int().default(7) }).strict(),
  z.object({ kind: z.literal('folder'), path: z.string().min(1), cropFraction: z.number().gt(0).lte(1).default(1) }).strict(),
]);

export type DatasetSpec = z.infer<typeof datasetSchema>;

/** A distributed training job as POST /v1/jobs accepts it. */
export const jobSpecSchema = z.object({
  name: z.string().max(200).optional(),
  dataset: datasetSchema,
  /** Identities held out of training (seeded choice), for evaluation. */
  holdout: z.number().int().min(0).default(0),
  /** Ranks (workers) the job runs on. */
  worldSize: z.number().int().min(1).max(256).default(1),
  /** Compare weight checksums across ranks every N steps (0 = never). */
  checksumEvery: z.number().int().min(0).default(10),
  train: trainOptionsSchema.default({}),
}).strict();

export type JobSpec = z.infer<typeof jobSpecSchema>;

/** Validates a job spec; SpecError lists each bad field by path. */
export function parseJobSpec(value: unknown): JobSpec {
  const r = jobSpecSchema.safeParse(value);
  if (!r.success) throw new SpecError(r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message })));
  return r.data;
}
