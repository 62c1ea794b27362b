import { z } from 'zod';
import { ALLREDUCE_ALGORITHMS } from './collective-schedule';
import { SpecError, specIssues, trainOptionsSchema } from '@facenet/core';

import { datasetSchema } from './datasets/dataset-kinds';
export type { DatasetSpec } from './datasets/dataset-kinds';

/**
 * The mining curriculum: how much of each batch comes from the miner's plan, and how hard the
 * mined negatives are, as training advances. Defaults and reasoning in the README.
 */
export const curriculumSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Step from which mined identities enter batches. */
    startStep: z.number().int().min(0).default(0),
    /** Steps over which the mined fraction rises linearly from 0 to finalFraction. */
    rampSteps: z.number().int().min(0).default(200),
    /** Fraction of each batch's identities drawn from mined pairs and confusable groups. */
    finalFraction: z.number().min(0).max(1).default(0.5),
    /** Negative hardness (0: just inside the margin, 1: at d(a,p)) at the start and end of its ramp. */
    hardnessStart: z.number().min(0).max(1).default(0.2),
    hardnessEnd: z.number().min(0).max(1).default(0.8),
    hardnessRampSteps: z.number().int().min(0).default(1000),
    /** Until this step the miner never offers negatives closer than the positive. */
    floorUntilStep: z.number().int().min(0).default(500),
    /** Images per identity the miner embeds (a bounded, seeded sample). */
    samplePerIdentity: z.number().int().min(2).default(20),
    /** Confusable identities kept per identity. */
    confusableK: z.number().int().min(1).default(5),
  })
  .strict();

export type CurriculumSpec = z.infer<typeof curriculumSchema>;

/** Mined fraction and hardness at a step. */
export function curriculumAt(c: CurriculumSpec, step: number): { fraction: number; hardness: number; floor: boolean } {
  const ramp = (from: number, steps: number) => (steps <= 0 ? (step >= from ? 1 : 0) : Math.min(1, Math.max(0, (step - from) / steps)));
  return {
    fraction: c.enabled ? c.finalFraction * ramp(c.startStep, c.rampSteps) : 0,
    hardness: c.hardnessStart + (c.hardnessEnd - c.hardnessStart) * ramp(0, c.hardnessRampSteps),
    floor: step < c.floorUntilStep,
  };
}

/**
 * What a job does when a step's loss, gradients or updated weights are NaN or Inf on any rank:
 * no rank applies it; the step is retried from the weights every rank still holds, with the
 * learning rate multiplied by `learningRateFactor`, and after `maxRollbacks` such rollbacks the
 * job fails and says why.
 */
export const nonFiniteSchema = z
  .object({
    learningRateFactor: z.number().gt(0).lt(1).default(0.1),
    maxRollbacks: z.number().int().min(0).max(100).default(3),
  })
  .strict();

/**
 * How the evaluator scores each checkpoint: an LFW-format pairs file with its images folder
 * (optionally only some folds), or, without one, pairs among the job's held-out identities.
 */
export const evaluationSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** LFW-format pairs.txt; needs `images`. */
    pairs: z.string().min(1).optional(),
    /** Folder of <name>/<name>_NNNN<ext> images the pairs file names. */
    images: z.string().min(1).optional(),
    ext: z.string().default('.jpg'),
    /** Only these folds of the pairs file (1-based, as LFW numbers them). */
    folds: z.array(z.number().int().min(1)).optional(),
    /** Centre crop of the pairs' images; default: the dataset's (folder datasets), else 1. */
    cropFraction: z.number().gt(0).lte(1).optional(),
    farTarget: z.number().gt(0).lt(1).default(1e-3),
    /** Cap on different-identity pairs drawn from held-out identities. */
    maxDifferentPairs: z.number().int().min(10).max(1_000_000).default(6000),
  })
  .strict()
  .refine((e) => !e.pairs === !e.images, { message: 'pairs and images go together', path: ['images'] });

export type EvaluationSpec = z.infer<typeof evaluationSchema>;

/**
 * Which checkpoints a job keeps on disk: the newest `keepLast` and the best by VAL (0: all, which
 * a long job turns into an unbounded folder and record; bounded by default).
 */
export const retentionSchema = z
  .object({
    keepLast: z.number().int().min(0).max(100_000).default(10),
  })
  .strict();

/** How gradients travel between ranks. */
export const allreduceSpecSchema = z
  .object({
    /** 'fp16': half the bytes on the wire, sums still accumulated in float32 (README, Performance). */
    compression: z.enum(['none', 'fp16']).default('none'),
    /**
     * 'ring' (bandwidth-optimal: 2(W-1) rounds of 1/W of the vector), 'recursive-doubling'
     * (latency-optimal: about log2 W rounds of the whole vector), or 'auto': doubling for vectors
     * small enough that the ring's rounds cost more than its bytes save (README, Performance).
     */
    algorithm: z.enum(ALLREDUCE_ALGORITHMS).default('auto'),
  })
  .strict();

/** A distributed training job as POST /v1/jobs accepts it. */
export const jobSpecSchema = z
  .object({
    name: z.string().max(200).optional(),
    /** The team queue it runs under (FACENET_QUEUES lists them; `default` always exists). */
    queue: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and -, at most 63')
      .default('default'),
    /** Within its queue, a higher priority starts first and may take ranks from lower ones at a step boundary. */
    priority: z.number().int().min(-1000).max(1000).default(0),
    dataset: datasetSchema,
    /** Identities held out of training (seeded choice), for evaluation. */
    holdout: z.number().int().min(0).default(0),
    /** Ranks (workers) the job runs on; a job that lost workers grows back to it at a step boundary. */
    worldSize: z.number().int().min(1).max(256).default(1),
    /**
     * Fewest ranks the job runs on; below it the job waits as pending. Unset: a new job waits for
     * its full worldSize, and once started runs on as few as one rank after losing workers.
     */
    minWorldSize: z.number().int().min(1).max(256).optional(),
    /** Compare weight checksums across ranks every N steps (0 = never). */
    checksumEvery: z.number().int().min(0).default(10),
    /**
     * Fail the job when this many steps in a row formed no triplet while the triplet loss was on
     * (every image undecodable, shards of one identity): it would "complete" having learnt nothing.
     * 0 = never.
     */
    maxStepsWithoutTriplets: z.number().int().min(0).max(1_000_000).default(20),
    /** Training options; checkpoint folders and evaluation belong to the cluster here, not to the spec. */
    train: trainOptionsSchema.omit({ checkpointDir: true, evaluateEvery: true }).default({}),
    curriculum: curriculumSchema.default(curriculumSchema.parse({})),
    nonFinite: nonFiniteSchema.default(nonFiniteSchema.parse({})),
    evaluation: evaluationSchema.default(evaluationSchema.parse({})),
    retention: retentionSchema.default(retentionSchema.parse({})),
    allreduce: allreduceSpecSchema.default(allreduceSpecSchema.parse({})),
  })
  .strict()
  .refine((s) => (s.minWorldSize ?? 1) <= s.worldSize, { message: 'minWorldSize must not exceed worldSize', path: ['minWorldSize'] });

export type JobSpec = z.infer<typeof jobSpecSchema>;

/** Validates a job spec; SpecError lists each bad field by path. */
export function parseJobSpec(value: unknown): JobSpec {
  const r = jobSpecSchema.safeParse(value);
  if (!r.success) throw new SpecError(specIssues(r.error.issues));
  return r.data;
}
