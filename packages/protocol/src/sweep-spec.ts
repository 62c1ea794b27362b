import { z } from 'zod';

/** A spec field by dotted path (e.g. `train.optimizer.learningRate`) and the values it takes. */
const path = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$/, 'a dotted path of field names, e.g. train.optimizer.learningRate');
const range = z.tuple([z.number(), z.number()]).refine(([lo, hi]) => lo < hi, 'the range must be [low, high] with low < high');

export const sweepParameterSchema = z.union([
  z
    .object({
      path,
      values: z
        .array(z.union([z.number(), z.string(), z.boolean(), z.record(z.string(), z.unknown())]))
        .min(1)
        .max(100),
    })
    .strict(),
  z.object({ path, uniform: range }).strict(),
  z.object({ path, logUniform: range.refine(([lo]) => lo > 0, 'a log-uniform range must be above 0') }).strict(),
  z.object({ path, intRange: z.tuple([z.number().int(), z.number().int()]).refine(([lo, hi]) => lo <= hi, 'low <= high') }).strict(),
  /**
   * Named alternatives, each a set of fields deep-merged into the trial's spec (objects merge key by
   * key, anything else replaces): recipes that differ in several fields at once, or seeds that set
   * train.seed and train.model.seed together. The trial's parameters record the variant's name
   * under the parameter's `name`.
   */
  z
    .object({
      name: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'a name of letters, digits, _ and -, e.g. arm'),
      variants: z
        .array(z.object({ name: z.string().min(1).max(100), set: z.record(z.string(), z.unknown()) }).strict())
        .min(1)
        .max(100)
        .refine((vs) => new Set(vs.map((v) => v.name)).size === vs.length, 'variant names must differ'),
    })
    .strict(),
]);
export type SweepParameter = z.infer<typeof sweepParameterSchema>;

/** Where a trial's parameters record a parameter's value: its path, or a variants parameter's name. */
export const parameterKey = (p: SweepParameter): string => ('variants' in p ? p.name : p.path);

/** The values a choice parameter takes (its `values`, or its variants' names); undefined for a range. */
export function choicesOf(p: SweepParameter): readonly unknown[] | undefined {
  if ('values' in p) return p.values;
  if ('variants' in p) return p.variants.map((v) => v.name);
  return undefined;
}

export const SWEEP_METRICS = ['val', 'auc', 'accuracy', 'allPairsVal'] as const;
export type SweepMetric = (typeof SWEEP_METRICS)[number];

/** A sweep as POST /v1/sweeps accepts it. */
export const sweepSpecSchema = z
  .object({
    name: z.string().max(200).optional(),
    /** The job spec every trial starts from; each trial's parameters are set on a copy of it. */
    base: z.record(z.string(), z.unknown()),
    parameters: z.array(sweepParameterSchema).min(1).max(20),
    /**
     * grid: every combination of `values` (ranges are not allowed); random: a seeded draw per
     * trial; tpe: random for the first `startupTrials` finished trials, then each trial proposed
     * by the Tree-structured Parzen Estimator from the finished trials' best scores (the best
     * `gamma` of them against the rest).
     */
    search: z
      .object({
        kind: z.enum(['grid', 'random', 'tpe']).default('random'),
        seed: z.number().int().default(1),
        startupTrials: z.number().int().min(2).max(100).default(4),
        gamma: z.number().gt(0).lt(1).default(0.25),
      })
      .strict()
      .default({ kind: 'random', seed: 1, startupTrials: 4, gamma: 0.25 }),
    /** The evaluator's score a trial is judged by, at each of its checkpoints. */
    objective: z
      .object({ metric: z.enum(SWEEP_METRICS).default('val'), goal: z.enum(['maximize', 'minimize']).default('maximize') })
      .strict()
      .default({ metric: 'val', goal: 'maximize' }),
    budget: z
      .object({
        maxTrials: z.number().int().min(1).max(1000).default(8),
        /** Trials running at once. */
        parallel: z.number().int().min(1).max(256).default(2),
        /** Stop launching trials once the finished ones have used this many rank-hours (0: no limit). */
        rankHours: z.number().min(0).default(0),
      })
      .strict()
      .default({ maxTrials: 8, parallel: 2, rankHours: 0 }),
    /**
     * median: a trial whose score at its k-th evaluation is worse than the median of the other
     * trials' scores at their k-th is stopped. asha: successive halving at rungs graceEvaluations x
     * eta^r: a trial not in the best 1/eta of those that reached the rung is stopped. Neither acts
     * before `graceEvaluations` evaluations of the trial.
     */
    earlyStopping: z
      .object({
        rule: z.enum(['none', 'median', 'asha']).default('median'),
        graceEvaluations: z.number().int().min(1).max(1000).default(2),
        eta: z.number().int().min(2).max(10).default(3),
        /** Trials that must have reached the same evaluation before one is judged against them. */
        minTrials: z.number().int().min(1).max(100).default(2),
      })
      .strict()
      .default({ rule: 'median', graceEvaluations: 2, eta: 3, minTrials: 2 }),
  })
  .strict()
  .superRefine((s, ctx) => {
    const seen = new Set<string>();
    s.parameters.forEach((p, i) => {
      if (s.search.kind === 'grid' && !('values' in p) && !('variants' in p))
        ctx.addIssue({ code: 'custom', path: ['parameters', i], message: 'a grid search takes `values` or `variants` only' });
      if (seen.has(parameterKey(p)))
        ctx.addIssue({ code: 'custom', path: ['parameters', i], message: `"${parameterKey(p)}" is swept twice` });
      seen.add(parameterKey(p));
    });
  });
export type SweepSpec = z.infer<typeof sweepSpecSchema>;

export const SWEEP_STATES = ['running', 'completed', 'cancelled'] as const;
export type SweepState = (typeof SWEEP_STATES)[number];

export interface TrialRecord {
  index: number;
  params: Record<string, unknown>;
  /** Absent when the trial's spec was refused at admission (`error` says why). */
  jobId?: string;
  state: 'running' | 'completed' | 'stopped' | 'failed' | 'cancelled';
  /** The objective at each evaluation of the trial's checkpoints, oldest first. */
  scores: number[];
  best?: { score: number; step: number };
  stopReason?: string;
  error?: string;
  rankSeconds: number;
  /**
   * A completed trial whose last checkpoint the evaluator has not scored yet: the runner keeps
   * reading its scores, and the sweep does not complete, until it has (or FINAL_SCORE_WAIT_MS).
   */
  awaitingFinalScore?: boolean;
}

export interface SweepRecord {
  id: string;
  spec: SweepSpec;
  state: SweepState;
  trials: TrialRecord[];
  createdAt: string;
  updatedAt: string;
}

const trialRecordSchema = z.looseObject({
  index: z.number().int().min(0),
  params: z.record(z.string(), z.unknown()),
  jobId: z.string().optional(),
  state: z.enum(['running', 'completed', 'stopped', 'failed', 'cancelled']),
  scores: z.array(z.number()),
  best: z.looseObject({ score: z.number(), step: z.number().int() }).optional(),
  stopReason: z.string().optional(),
  error: z.string().optional(),
  rankSeconds: z.number().min(0),
  awaitingFinalScore: z.boolean().optional(),
});

/** A sweep as stored in Redis (read back through this schema: a stored record is outside input too). */
export const sweepRecordSchema: z.ZodType<SweepRecord> = z.looseObject({
  id: z.string().min(1),
  spec: sweepSpecSchema,
  state: z.enum(SWEEP_STATES),
  trials: z.array(trialRecordSchema),
  createdAt: z.string(),
  updatedAt: z.string(),
}) as unknown as z.ZodType<SweepRecord>;
