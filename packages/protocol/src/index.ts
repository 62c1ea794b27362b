// @facenet/protocol: the contract between the processes (coordinator, workers, miner, CLI, tests):
// job spec, job record and view, shard jobs, Redis key names, events, collective ids and schedules,
// dataset specs. Types, schemas and pure functions only: no Redis, queue or HTTP code, which lives
// in @facenet/service-kit. The ML library (@facenet/core) holds no cluster code.
export {
  parseJobSpec,
  jobSpecSchema,
  curriculumSchema,
  curriculumAt,
  nonFiniteSchema,
  evaluationSchema,
  retentionSchema,
} from './job-spec';
export type { JobSpec, DatasetSpec, CurriculumSpec, EvaluationSpec } from './job-spec';
export {
  shardJobId,
  workerQueueName,
  isStateQuery,
  collectiveId,
  collectiveLinkId,
  parseCollectiveId,
  collectiveSecret,
  ringPlace,
} from './shard-job';
export { ALLREDUCE_ALGORITHMS, recursiveDoublingSchedule, doublingSources, doublingSinks } from './collective-schedule';
export type { AllreduceAlgorithm, CollectiveAlgorithm, DoublingStep } from './collective-schedule';
export type {
  RingPlace,
  ShardJobData,
  ShardJobResult,
  StepTimings,
  StateQuery,
  HeldState,
  WorkerJobData,
  WorkerJobResult,
} from './shard-job';
export { FINAL_STATES, JOB_STATES, jobView, stepSummary, MAX_PREEMPTION_RECORDS } from './job-record';
export type {
  JobState,
  JobRecord,
  JobView,
  StepRecord,
  StepSummary,
  FaultRecord,
  FaultKind,
  WorldMember,
  CheckpointEntry,
  PreemptionRecord,
} from './job-record';
export { redisKeys } from './redis-keys';
export type { WorkerInfo } from './redis-keys';
export type { CheckpointEvent, AbortMessage } from './events';
export { summarizePlan } from './mining-plan';
export type { MiningPlan, PlanSummary } from './mining-plan';
export { datasetKind, datasetSchema, jobDataSource, sourceFromSpec, trainingSource } from './datasets/dataset-kinds';
export { peopleOfPairsFolds } from './datasets/folder-dataset';
export type { DatasetKind, PackOptions, SpecIssue } from './datasets/dataset-kind';
export type { DatasetIndexRef, StoredIndexes } from './datasets/dataset-index-ref';
export { bestEvaluation } from './evaluation';
export { allowedLocation, dataRoots, dataUrls, insideRoots, OUTSIDE_ROOTS } from './data-roots';
export type { EvaluationRecord } from './evaluation';
export { budgetShortfall, defaultGflops, defaultMemoryBudget, stepEstimate } from './step-budget';
export type { WorkerBudget } from './step-budget';
export {
  StoredRecordError,
  parseStored,
  parseStoredList,
  jobRecordSchema,
  stepRecordSchema,
  evaluationRecordSchema,
  workerInfoSchema,
  abortMessageSchema,
  miningPlanSchema,
} from './stored-records';
export {
  choicesOf,
  parameterKey,
  sweepSpecSchema,
  sweepParameterSchema,
  sweepRecordSchema,
  SWEEP_METRICS,
  SWEEP_STATES,
} from './sweep-spec';
export type { SweepSpec, SweepParameter, SweepMetric, SweepRecord, SweepState, TrialRecord } from './sweep-spec';
