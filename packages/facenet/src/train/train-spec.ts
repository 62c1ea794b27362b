import { z } from 'zod';
import { SpecError } from '../errors';
import { ARCHITECTURES } from '../model/zoo';
import { SELECTION_STRATEGIES } from '../loss/triplet-selection';
import { OPTIMIZERS } from '../optim/optimizer';
import { TrainOptions } from './train-options';

const enumOf = <T extends string>(values: readonly T[]) => z.enum(values as [T, ...T[]]);

/**
 * The schema of a training spec as users write it (YAML or JSON). zod checks structure and
 * types and names the path of every bad field; compileTrainOptions then checks ranges.
 */
export const trainOptionsSchema = z.object({
  model: z.object({
    architecture: enumOf(ARCHITECTURES),
    imageSize: z.number().int(),
    embeddingDim: z.number().int(),
    width: z.number(),
    seed: z.number().int(),
  }).partial().strict(),
  optimizer: z.object({
    name: enumOf(OPTIMIZERS),
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
  selection: enumOf(SELECTION_STRATEGIES),
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
  return r.data;
}

/**
 * The schema and TrainOptions (whose TSDoc carries the defaults) describe the same object, proved
 * at compile time: a field added to one and not the other fails the build, so no cast joins them.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Same types, and the same keys at every level of nested objects (an optional field in only one side is a difference). */
type SameShape<A, B> = Same<A, B> extends true
  ? Same<keyof A, keyof B> extends true
    ? { [K in keyof A & keyof B]-?: NonNullable<A[K]> extends object ? SameShape<NonNullable<A[K]>, NonNullable<B[K]>> : true }[keyof A & keyof B] extends true ? true : false
    : false
  : false;
export const SCHEMA_MATCHES_TRAIN_OPTIONS: SameShape<z.infer<typeof trainOptionsSchema>, TrainOptions> = true;
