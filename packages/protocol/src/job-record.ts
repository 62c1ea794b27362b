import type { TrainConfig, TripletStats } from '@facenet/core';
import type { JobSpec } from './job-spec';
import { bestEvaluation, EvaluationRecord } from './evaluation';
import type { StepTimings } from './shard-job';
import type { DatasetIndexRef } from './datasets/dataset-index-ref';

/**
 * Every state a job can be in (job-lifecycle.ts holds the transitions). `admitting`: POST answered
 * 202 while its dataset is still being indexed; it becomes `pending` or `failed` when that ends.
 */
export const JOB_STATES = ['admitting', 'pending', 'running', 'paused', 'completed', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const FINAL_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];

export interface WorldMember {
  workerId: string;
  address: string;
}

export interface CheckpointEntry {
  step: number;
  dir: string;
  createdAt: string;
}

export interface StepRecord extends TripletStats {
  step: number;
  /** The world generation that ran it. */
  generation?: number;
  /** A step run again after a rewind (its number was committed before). */
  replay?: boolean;
  /** Undone by a later rewind to an earlier step; a replay of the same number follows. */
  rolledBack?: boolean;
  /** Committed from the survivors of a fault: every rank had applied it, one died before reporting. */
  recovered?: boolean;
  /** The mining plan the batch was planned with, and how many steps it lagged. */
  planVersion?: number;
  minerLag?: number;
  imagesPerSecond: number;
  stepMs: number;
  /** Per-rank timings of the step. */
  timings: StepTimings[];
}

/** A step in brief, as the job's header keeps its last ten. */
export interface StepSummary {
  step: number;
  loss: number;
  activeFraction: number;
  imagesPerSecond: number;
}

export function stepSummary(h: StepRecord): StepSummary {
  return { step: h.step, loss: h.loss, activeFraction: h.activeFraction, imagesPerSecond: h.imagesPerSecond };
}

/**
 * What went wrong: a rank gone or a step that failed on the ring or a worker (the world is rebuilt
 * from the survivors), NaN/Inf (rolled back), storage refusing a checkpoint (the job pauses; the
 * world stays), or a worker refusing the job as invalid (the job fails: re-planning cannot help).
 */
export const FAULT_KINDS = ['worker-lost', 'step-failed', 'non-finite', 'storage', 'rejected'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Where a job's weights came from after a fault: survivors' verified state, a checkpoint, or a non-finite rollback. */
export const RECOVERY_SOURCES = ['survivors', 'checkpoint', 'rollback'] as const;

export interface FaultRecord {
  at: string;
  /** Committed steps when it happened (the step in flight is step + 1). */
  step: number;
  /** The step it happened in, numbered as logs and the status page number steps (1-based): the step
   * in flight, or for a storage fault the step whose checkpoint was refused. */
  inStep?: number;
  generation: number;
  kind?: FaultKind;
  reason: string;
  /** The class of the error behind it, as the worker threw it (AllreduceError, StorageError, ...). */
  errorClass?: string;
  /** Where the job continued from, and how many committed steps that undid. */
  resumedAt?: number;
  stepsLost?: number;
  /** Where the weights came from (RECOVERY_SOURCES). */
  recovery?: (typeof RECOVERY_SOURCES)[number];
}

/** Everything the coordinator knows about a job; stored as JSON in Redis. */
/** A preemption of a job: who took ranks from it, when, why, and what it kept (0: checkpointed and requeued). */
export interface PreemptionRecord {
  at: string;
  step: number;
  by: string;
  from: number;
  to: number;
  reason: 'priority' | 'reclaim' | 'backfill';
}

export const MAX_PREEMPTION_RECORDS = 50;

export interface AdmissionProgress {
  startedAt: string;
  images: number;
  budgetMs: number;
}

export interface JobRecord {
  id: string;
  name?: string;
  spec: JobSpec;
  /** The compiled training configuration (defaults filled). */
  train: TrainConfig;
  /** The dataset's packed identity index, stored at admission (service-kit's DatasetIndexStore); absent for synthetic data. */
  dataIndex?: DatasetIndexRef;
  state: JobState;
  /** Steps committed (the next step to run). */
  step: number;
  /** Bumped whenever the set of ranks changes or a step is abandoned. */
  generation: number;
  world: WorldMember[];
  /** Checkpoint the ranks load when their weights are not at `step`. */
  restoreFrom: string | null;
  checkpoints: CheckpointEntry[];
  last?: StepRecord;
  /** The last ten steps in brief, newest last; the full records are in the history list (redisKeys.jobHistory). */
  recent?: StepSummary[];
  /** Records written before the history list kept every step here; JobStore moves them out. */
  history?: StepRecord[];
  faults: FaultRecord[];
  /** Workers whose held weights were verified at `step` for this generation (a state query after a
   * fault, drain or join): they continue without loading a checkpoint. */
  stateHolders?: string[];
  /** Random, per job: each generation's collective secret derives from it (never shown by the API). */
  secretSeed?: string;
  /** Multiplies the learning rate schedule; lowered by each non-finite rollback. */
  learningRateScale?: number;
  nonFiniteRollbacks?: number;
  /** Committed steps in a row that formed no triplet while the triplet loss was on. */
  stepsWithoutTriplets?: number;
  /** Which mining plan was in force from which step, so re-run steps use the same plans. */
  planSwitches: { fromStep: number; jobId: string; version: number }[];
  /** The furthest step ever committed (steps below it after a rewind are replays). */
  highWater: number;
  forkedFrom?: { jobId: string; step: number };
  /** Started on idle ranks while this job waited at the head of the line (backfill): it may take them back. */
  backfilledFor?: string;
  /** Step records of the history moved to disk (the oldest; JobStore.spillHistory). */
  historySpilled?: number;
  /** While `admitting`: when indexing began, the images indexed so far, and its time budget. */
  admission?: AdmissionProgress;
  /** The sweep this job is a trial of. */
  sweep?: { id: string; trial: number };
  /** Ranks taken from this job by others (newest last, the last 50). */
  preemptions?: PreemptionRecord[];
  error?: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * What GET /v1/jobs/:id shows; `requested` is a pause or cancel not yet taken at a step boundary,
 * `evaluations` the evaluator's scores of the job's checkpoints (the latest and the best by VAL shown).
 */
export function jobView(j: JobRecord, requested: 'pause' | 'cancel' | null = null, evaluations: readonly EvaluationRecord[] = []) {
  return {
    id: j.id,
    name: j.name,
    queue: j.spec.queue,
    priority: j.spec.priority,
    state: j.state,
    requested,
    step: j.step,
    steps: j.train.steps,
    loss: j.last?.loss,
    activeFraction: j.last?.activeFraction,
    imagesPerSecond: j.last?.imagesPerSecond,
    classificationLoss: j.last?.classificationLoss || undefined, // absent when the job has no classification term
    world: { size: j.world.length, generation: j.generation, workers: j.world.map((w) => w.workerId) },
    planVersion: j.last?.planVersion ?? null,
    minerLag: j.last?.minerLag ?? null,
    lastCheckpoint: j.checkpoints[j.checkpoints.length - 1] ?? null,
    evaluation: { latest: evaluations[evaluations.length - 1] ?? null, best: bestEvaluation(evaluations), count: evaluations.length },
    learningRateScale: j.learningRateScale ?? 1,
    nonFiniteRollbacks: j.nonFiniteRollbacks ?? 0,
    recent: j.recent ?? [],
    faults: j.faults,
    preemptions: j.preemptions ?? [],
    sweep: j.sweep ?? null,
    backfilledFor: j.backfilledFor ?? null,
    admission: j.admission ?? null,
    dataIndex: j.dataIndex ?? null,
    forkedFrom: j.forkedFrom,
    error: j.error,
    spec: j.spec,
    createdAt: j.createdAt,
    updatedAt: j.updatedAt,
  };
}

/** The job as the API shows it (GET /v1/jobs/:id), also what the CLI and tests read. */
export type JobView = ReturnType<typeof jobView>;
