import { z } from 'zod';
import { SpecError } from '../errors';
import { ARCHITECTURES } from '../model/zoo';
import { MINING_STRATEGIES } from '../loss/triplet-selection';
import { OPTIMIZERS } from '../optim/optimizer';
import { TrainOptions } from './train-options';

/**
 * The schema of a training spec as users write it (YAML or JSON). zod checks structure and
 * types and names the path of every bad field; compileTrainOptions then checks ranges.
 */
export const trainOptionsSchema = z.object({
  model: z.object({
    architecture: z.enum(ARCHITECTURES as [string, ...string[]]),
    imageSize: z.number().int(),
    embeddingDim: z.number().int(),
    width: z.number(),
    seed: z.number().int(),
  }).partial().strict(),
  optimizer: z.object({
    name: z.enum(OPTIMIZERS as [string, ...string[]]),
    learningRate: z.number(),
    momentum: z.number(),
    beta1: z.number(),
    beta2: z.number(),
    epsilon: z.number(),
    initialAccumulator: z.number(),
    weightDecay: z.number(),
  }).partial().strict(),
  schedule: z.object({
    kind: z.enum(['constant', 'step', 'cosine']),
    warmupSteps: z.number().int(),
    every: z.number().int(),
    factor: z.number(),
    minFactor: z.number(),
    totalSteps: z.number().int(),
  }).partial().strict(),
  batch: z.object({ P: z.number().int(), K: z.number().int(), singletonNegatives: z.number().int() }).partial().strict(),
  virtualShards: z.number().int(),
  mining: z.enum(MINING_STRATEGIES as [string, ...string[]]),
  margin: z.number(),
  steps: z.number().int(),
  seed: z.number().int(),
  augment: z.union([z.literal(false), z.object({ cropMargin: z.number(), flip: z.boolean() }).partial().strict()]),
  bnMomentum: z.number(),
  checkpointDir: z.string(),
  checkpointEvery: z.number().int(),
  evaluateEvery: z.number().int(),
}).partial().strict();

/** Validates an untrusted spec; a SpecError names every bad field by its path. */
export function parseTrainSpec(value: unknown): TrainOptions {
  const r = trainOptionsSchema.safeParse(value);
  if (!r.success) {
    throw new SpecError(r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message })));
  }
  return r.data as TrainOptions;
}
