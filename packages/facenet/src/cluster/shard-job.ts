import { BatchItem } from '../data/pk-sampler';
import { TrainConfig } from '../train/train-options';
import { TripletStats } from '../train/train-step';
import { DatasetSpec } from './job-spec';

/**
 * The contract between coordinator and workers: one BullMQ job per (job, step, rank), with
 * an id that makes re-adding idempotent. Kept here (no network code) so both sides share it.
 */
export interface ShardJobData {
  jobId: string;
  step: number;
  rank: number;
  generation: number;
  /** Allreduce addresses in rank order. */
  world: string[];
  /** This rank's virtual shards (whole identities each). */
  shards: BatchItem[][];
  /** The next step's shards for this rank, to decode while this step computes. */
  prefetch?: { step: number; shards: BatchItem[][] };
  dataset: DatasetSpec;
  train: TrainConfig;
  /** Checkpoint to load when this rank's weights are not at `step` (null: fresh init, step 0 only). */
  restoreFrom: string | null;
  /** Rank 0 writes a checkpoint of the weights after this step into this folder. */
  checkpointDir?: string;
  /** Return a checksum of the weights after the update. */
  checksum: boolean;
}

export interface StepTimings {
  dataMs: number;
  computeMs: number;
  allreduceMs: number;
  optimizerMs: number;
  checkpointMs: number;
}

export interface ShardJobResult {
  step: number;
  rank: number;
  generation: number;
  /** Statistics of the whole step (all ranks' shards), identical on every rank. */
  stats: TripletStats;
  timings: StepTimings;
  allreduceBytes: number;
  checksum?: string;
  checkpoint?: string;
  /** Images that failed to decode on this rank. */
  skipped: { key: string; reason: string }[];
}

export const shardJobId = (jobId: string, step: number, rank: number, generation: number) => `${jobId}-s${step}-r${rank}-g${generation}`;
export const workerQueueName = (workerId: string) => `worker-${workerId}`;
