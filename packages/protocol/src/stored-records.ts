import { z } from 'zod';
import { FacenetError } from '@facenet/core';
import type { TrainConfig } from '@facenet/core';
import { FAULT_KINDS, JOB_STATES, RECOVERY_SOURCES } from './job-record';
import type { FaultRecord, JobRecord, StepRecord, StepSummary } from './job-record';
import { jobSpecSchema } from './job-spec';
import type { EvaluationRecord } from './evaluation';
import type { WorkerInfo } from './redis-keys';
import type { AbortMessage } from './events';
import type { MiningPlan } from './mining-plan';

/**
 * Every JSON record the processes keep in Redis, parsed in one place: a record that is not what
 * its reader expects fails with the key and the field named, instead of an unchecked cast
 * failing later somewhere else. Older records are upgraded here (fields added since get their
 * defaults; a job's spec is re-parsed, so spec options added later take their defaults). Objects
 * are loose: fields a newer process wrote survive an older one's read-modify-write.
 *
 * Each schema is declared against the record's interface (z.ZodType<Interface>), so the two
 * cannot drift apart without the compiler saying so.
 */
export class StoredRecordError extends FacenetError {
  constructor(
    readonly what: string,
    detail: string,
  ) {
    super(`stored ${what} is malformed: ${detail}`);
  }
}

const int = z.number().int();
/** JSON writes NaN and Infinity as null; read them back as the NaN the writer had. */
const num = z.preprocess((v) => (v === null ? Number.NaN : v), z.union([z.number(), z.nan()]));

const stepTimings = z.looseObject({ dataMs: num, computeMs: num, allreduceMs: num, optimizerMs: num, checkpointMs: num });

export const stepRecordSchema: z.ZodType<StepRecord> = z.looseObject({
  step: int,
  loss: num,
  activeFraction: num,
  meanPositiveDistance: num,
  meanNegativeDistance: num,
  triplets: num,
  images: num,
  // Records from before the classification term have neither.
  classificationLoss: num.default(0),
  classificationAccuracy: num.default(0),
  generation: int.optional(),
  replay: z.boolean().optional(),
  rolledBack: z.boolean().optional(),
  recovered: z.boolean().optional(),
  planVersion: num.optional(),
  minerLag: num.optional(),
  imagesPerSecond: num,
  stepMs: num,
  timings: z.array(stepTimings).default([]),
});

const stepSummary: z.ZodType<StepSummary> = z.looseObject({ step: int, loss: num, activeFraction: num, imagesPerSecond: num });

const faultRecord: z.ZodType<FaultRecord> = z.looseObject({
  at: z.string(),
  step: int,
  inStep: int.optional(),
  generation: int,
  kind: z.enum(FAULT_KINDS).optional(),
  reason: z.string(),
  errorClass: z.string().optional(),
  resumedAt: int.optional(),
  stepsLost: int.optional(),
  recovery: z.enum(RECOVERY_SOURCES).optional(),
});

export const jobRecordSchema: z.ZodType<JobRecord> = z
  .looseObject({
    id: z.string().min(1),
    name: z.string().optional(),
    spec: jobSpecSchema,
    // Compiled from the spec at admission by core's own schema; checked there, carried here.
    train: z.custom<TrainConfig>((v) => typeof v === 'object' && v !== null && 'steps' in v, 'not a compiled training configuration'),
    dataIndex: z.looseObject({ id: z.string(), identities: int, images: int, bytes: int }).optional(),
    state: z.enum(JOB_STATES),
    step: int.min(0),
    generation: int.min(0),
    world: z.array(z.looseObject({ workerId: z.string(), address: z.string() })),
    restoreFrom: z.string().nullable(),
    checkpoints: z.array(z.looseObject({ step: int, dir: z.string(), createdAt: z.string() })).default([]),
    last: stepRecordSchema.optional(),
    recent: z.array(stepSummary).optional(),
    history: z.array(stepRecordSchema).optional(),
    faults: z.array(faultRecord).default([]),
    stateHolders: z.array(z.string()).optional(),
    secretSeed: z.string().optional(),
    learningRateScale: num.optional(),
    nonFiniteRollbacks: int.optional(),
    stepsWithoutTriplets: int.optional(),
    planSwitches: z.array(z.looseObject({ fromStep: int, jobId: z.string(), version: int })).default([]),
    // Records from before rewinds were tracked: nothing was ever undone, so the furthest step is this one.
    highWater: int.optional(),
    forkedFrom: z.looseObject({ jobId: z.string(), step: int }).optional(),
    backfilledFor: z.string().optional(),
    historySpilled: int.optional(),
    admission: z.looseObject({ startedAt: z.string(), images: int, budgetMs: num }).optional(),
    sweep: z.looseObject({ id: z.string(), trial: int }).optional(),
    preemptions: z
      .array(
        z.looseObject({
          at: z.string(),
          step: int,
          by: z.string(),
          from: int,
          to: int,
          reason: z.enum(['priority', 'reclaim', 'backfill']),
        }),
      )
      .optional(),
    error: z.string().optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .transform((j) => ({ ...j, highWater: j.highWater ?? j.step }));

export const evaluationRecordSchema: z.ZodType<EvaluationRecord> = z.looseObject({
  jobId: z.string(),
  step: int,
  checkpointDir: z.string(),
  set: z.enum(['holdout', 'pairs-file']),
  pairs: int,
  folds: int,
  accuracy: num,
  accuracyStd: num,
  val: num,
  valStd: num,
  far: num,
  farTarget: num,
  auc: num,
  threshold: num,
  droppedPairs: int,
  skippedImages: int,
  seconds: num,
  at: z.string(),
  allPairs: z
    .looseObject({
      valAt1e3: num.nullable(),
      valAt1e4: num.nullable(),
      images: int,
      genuinePairs: int,
      impostorPairs: int,
      impostorPairsScored: int,
    })
    .optional(),
});

export const workerInfoSchema: z.ZodType<WorkerInfo> = z.looseObject({
  id: z.string().min(1),
  address: z.string(),
  host: z.string(),
  pid: int,
  backend: z.string(),
  startedAt: z.string(),
  metrics: z.string().optional(),
  draining: z.boolean().optional(),
  budget: z.looseObject({ memoryBytes: num, gflops: num, maxBufferBytes: num.optional() }).optional(),
  gpu: z
    .looseObject({
      vendor: z.string(),
      architecture: z.string(),
      description: z.string(),
      software: z.boolean(),
      maxBufferSize: num,
      maxStorageBufferBindingSize: num,
    })
    .optional(),
});

export const abortMessageSchema: z.ZodType<AbortMessage> = z.looseObject({
  jobId: z.string(),
  generation: int,
  interrupt: z.boolean().optional(),
});

export const miningPlanSchema: z.ZodType<MiningPlan> = z.looseObject({
  jobId: z.string(),
  version: int,
  step: int,
  checkpoint: z.string(),
  createdAt: z.string(),
  hardness: num,
  floor: z.boolean(),
  pairs: z.array(z.tuple([int, int, int])),
  confusable: z.record(z.string(), z.array(int)),
  sample: z.array(z.looseObject({ anchor: z.string(), positive: z.string(), negative: z.string(), dap: num, dan: num })),
  // The miner's own statistics: shown, never computed on.
  stats: z.custom<MiningPlan['stats']>((v) => typeof v === 'object' && v !== null, 'not mining statistics'),
  skippedSteps: z.array(int).default([]),
  timings: z.looseObject({ embedMs: num, mineMs: num, images: num }),
});

/** Parses one stored JSON record; `what` names it in the error (e.g. "job abc", "worker w1"). */
export function parseStored<T>(schema: z.ZodType<T>, raw: string, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new StoredRecordError(what, `not JSON (${(err as Error).message})`);
  }
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new StoredRecordError(what, `${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
}

/**
 * Parses a stored list (evaluations, step history, registrations): an entry that does not parse
 * is left out and reported to `skipped`, so one bad entry does not hide the rest.
 */
export function parseStoredList<T>(
  schema: z.ZodType<T>,
  raws: readonly string[],
  what: string,
  skipped?: (err: StoredRecordError) => void,
): T[] {
  const out: T[] = [];
  raws.forEach((raw, i) => {
    try {
      out.push(parseStored(schema, raw, `${what} [${i}]`));
    } catch (err) {
      if (!(err instanceof StoredRecordError)) throw err;
      skipped?.(err);
    }
  });
  return out;
}
