import { z } from 'zod';
import { SpecError } from '../errors';
import { ARCHITECTURES } from '../model/zoo';
import { SELECTION_STRATEGIES } from '../loss/triplet-selection';
import { OPTIMIZERS } from '../optim/optimizer';
import { CLASSIFICATION_HEADS } from '../loss/classification-loss';
import { CLASSIFICATION_MODES } from './objective';
import { TrainOptions } from './train-options';

const enumOf = <T extends string>(values: readonly T[]) => z.enum(values as [T, ...T[]]);

/**
 * The schema of a training spec as users write it (YAML or JSON). zod checks structure and
 * types and names the path of every bad field; compileTrainOptions then checks ranges.
 */
export const trainOptionsSchema = z
  .object({
    model: z
      .object({
        architecture: enumOf(ARCHITECTURES),
        imageSize: z.number().int(),
        embeddingDim: z.number().int(),
        width: z.number(),
        seed: z.number().int(),
      })
      .partial()
      .strict(),
    optimizer: z
      .object({
        name: enumOf(OPTIMIZERS),
        learningRate: z.number(),
        momentum: z.number(),
        beta1: z.number(),
        beta2: z.number(),
        epsilon: z.number(),
        initialAccumulator: z.number(),
        weightDecay: z.number(),
      })
      .partial()
      .strict(),
    schedule: z
      .object({
        kind: z.enum(['constant', 'step', 'cosine']),
        warmupSteps: z.number().int(),
        every: z.number().int(),
        factor: z.number(),
        minFactor: z.number(),
        totalSteps: z.number().int(),
      })
      .partial()
      .strict(),
    batch: z.object({ P: z.number().int(), K: z.number().int(), singletonNegatives: z.number().int() }).partial().strict(),
    virtualShards: z.number().int(),
    selection: enumOf(SELECTION_STRATEGIES),
    margin: z.number(),
    classification: z.union([
      z.literal(false),
      z
        .object({
          head: enumOf(CLASSIFICATION_HEADS),
          mode: enumOf(CLASSIFICATION_MODES),
          weight: z.number(),
          warmupSteps: z.number().int(),
          scale: z.number(),
          margin: z.number(),
          classes: z.number().int(),
        })
        .partial()
        .strict(),
    ]),
    steps: z.number().int(),
    seed: z.number().int(),
    augment: z.union([z.literal(false), z.object({ cropMargin: z.number(), flip: z.boolean() }).partial().strict()]),
    bnMomentum: z.number(),
    checkpointDir: z.string(),
    checkpointEvery: z.number().int(),
    evaluateEvery: z.number().int(),
  })
  .partial()
  .strict();

type ZodIssue = z.core.$ZodIssue;

/**
 * Each issue as { path, message }. A field that is `false` or an object (augment, classification)
 * fails as a union, which zod reports at the field itself ("Invalid input"); the object branch's
 * own issues name the bad sub-field, so those are reported instead.
 */
export function specIssues(issues: readonly ZodIssue[], prefix: PropertyKey[] = []): { path: string; message: string }[] {
  return issues.flatMap((i) => {
    const path = [...prefix, ...i.path];
    if (i.code === 'invalid_union' && i.errors.length) {
      const deepest = i.errors.reduce((a, b) =>
        Math.max(0, ...b.map((x) => x.path.length)) > Math.max(0, ...a.map((x) => x.path.length)) ? b : a,
      );
      if (deepest.some((x) => x.path.length > 0)) return specIssues(deepest, path);
    }
    return [{ path: path.map(String).join('.') || '(root)', message: i.message }];
  });
}

/** Validates an untrusted spec; a SpecError names every bad field by its path. */
export function parseTrainSpec(value: unknown): TrainOptions {
  const r = trainOptionsSchema.safeParse(value);
  if (!r.success) throw new SpecError(specIssues(r.error.issues));
  return r.data;
}

/**
 * The schema and TrainOptions (whose TSDoc carries the defaults) describe the same object, proved
 * at compile time: a field added to one and not the other fails the build, so no cast joins them.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Same types, and the same keys at every level of nested objects (an optional field in only one side is a difference). */
type SameShape<A, B> =
  Same<A, B> extends true
    ? Same<keyof A, keyof B> extends true
      ? { [K in keyof A & keyof B]-?: NonNullable<A[K]> extends object ? SameShape<NonNullable<A[K]>, NonNullable<B[K]>> : true }[keyof A &
          keyof B] extends true
        ? true
        : false
      : false
    : false;
export const SCHEMA_MATCHES_TRAIN_OPTIONS: SameShape<z.infer<typeof trainOptionsSchema>, TrainOptions> = true;
