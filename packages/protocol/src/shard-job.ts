import { createHash } from 'node:crypto';
import type { BatchItem, TrainConfig, TripletStats } from '@facenet/core';
import { DatasetSpec } from './job-spec';
import { doublingSources } from './collective-schedule';
import type { AllreduceAlgorithm, CollectiveAlgorithm } from './collective-schedule';

/**
 * The contract between coordinator and workers: one item per (job, step, rank) in the rank's
 * inbox, with an id that makes sending it again idempotent (the worker answers it again, without a
 * second run). Kept here (no network code) so both sides share it.
 */
export interface ShardJobData {
  jobId: string;
  step: number;
  rank: number;
  generation: number;
  /** This rank's place in the collectives: the world's size, its ring predecessor's address and its
   * recursive-doubling partners' (O(log W) addresses, not the world's W). */
  ring: RingPlace;
  /** This rank's virtual shards (whole identities each). */
  shards: BatchItem[][];
  /** The next step's shards for this rank, to decode while this step computes. */
  prefetch?: { step: number; shards: BatchItem[][] };
  dataset: DatasetSpec;
  /** The id of the dataset's stored index (DatasetIndexStore); absent for synthetic data. */
  dataIndex?: string;
  train: TrainConfig;
  /** Checkpoint to load when this rank's weights are not at `step` (null: fresh init, step 0 only). */
  restoreFrom: string | null;
  /** The coordinator verified this rank's held weights at `step` (state query): keep them although
   * the generation is new. Without it, held weights are kept only within one generation. */
  trustHeld: boolean;
  /** Rank 0 writes a checkpoint of the weights after this step into this folder. */
  checkpointDir?: string;
  /** Return a checksum of the weights after the update. */
  checksum: boolean;
  /** Multiplies the scheduled learning rate: lowered after each non-finite rollback. */
  learningRateScale: number;
  /** This generation's collective secret: ranks serve their allreduce rounds only to the
   * successor that presents it (with the right rank), so no one else can read or inject gradients. */
  collectiveSecret: string;
  /** Gradients on the wire as fp16 (job spec `allreduce.compression`); absent: float32. */
  compression?: 'none' | 'fp16';
  /** Which allreduce (job spec `allreduce.algorithm`); absent: 'auto' (by vector size and W). */
  algorithm?: AllreduceAlgorithm;
}

/**
 * What a rank needs of the world to run its collectives: the size, the address of the rank before
 * it in the ring (it pulls the ring's rounds from there; its successor finds it the same way), and
 * the addresses of the ranks it receives from in recursive doubling. A shard job carries this, not
 * the world's W addresses: dispatching a step stays O(W log W) bytes in all, not O(W^2).
 */
export interface RingPlace {
  size: number;
  /** host:port of rank (rank - 1 + size) % size; this rank's own when size is 1. */
  predecessor: string;
  /** The addresses of this rank's recursive-doubling sources, in `doublingSources(rank, size)`
   * order (both sides compute the ranks, so only addresses travel: every rank's shard job carries
   * these every step). Absent in shard jobs of older coordinators, whose ranks use the ring. */
  partners?: string[];
}

/** The place of `rank` in a world listed in rank order. */
export function ringPlace(world: readonly string[], rank: number): RingPlace {
  return {
    size: world.length,
    predecessor: world[(rank - 1 + world.length) % world.length] as string,
    partners: doublingSources(rank, world.length).map((r) => world[r] as string),
  };
}

/** The collective secret of one job generation, derived from the job's random seed. */
export function collectiveSecret(secretSeed: string, generation: number): string {
  return createHash('sha256').update(`${secretSeed}/${generation}`).digest('hex');
}

/**
 * Asks a worker what its compute thread holds for a job (step and weight checksum), after a
 * fault, before a drain or a join; with `checkpointDir`, also to write those weights there so
 * ranks that lack them can load them. Same inbox as the steps, so it runs between two steps.
 */
export interface StateQuery {
  kind: 'state';
  jobId: string;
  checkpointDir?: string;
}

export interface HeldState {
  jobId: string;
  /** Steps applied. */
  step: number;
  /** sha256 of the weights and batch-norm statistics. */
  checksum: string;
  checkpoint?: string;
}

/** Everything a worker's inbox carries, and what each returns. */
export type WorkerJobData = ShardJobData | StateQuery;
export type WorkerJobResult = ShardJobResult | HeldState | null;

export function isStateQuery(d: WorkerJobData): d is StateQuery {
  return (d as StateQuery).kind === 'state';
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
  /** The collective that summed the step's vector (absent from workers before the choice existed). */
  allreduceAlgorithm?: CollectiveAlgorithm;
  checksum?: string;
  checkpoint?: string;
  /** Images that failed to decode on this rank. */
  skipped: { key: string; reason: string }[];
  /** Set when the step was not applied because its loss, gradients or new weights were NaN or Inf
   * (every rank decides alike); the weights stay at `step`. */
  nonFinite?: string;
  /** Set when the step was applied (every rank holds it) but rank 0 could not write its checkpoint:
   * a storage fault, not a fault of the ring; `checkpoint` is then absent. */
  checkpointError?: { path: string; code: string; reason: string };
}

export const shardJobId = (jobId: string, step: number, rank: number, generation: number) => `${jobId}-s${step}-r${rank}-g${generation}`;
/** A worker's name in logs and the queue-depth gauge (`facenet_queue_jobs{queue="worker-<id>"}`). */
export const workerQueueName = (workerId: string) => `worker-${workerId}`;

/** Names one allreduce, "<job>/<step>/<generation>"; the ring's Pull requests carry it. */
export const collectiveId = (jobId: string, step: number, generation: number) => `${jobId}/${step}/${generation}`;

/** Names one link of a recursive-doubling allreduce: "<collective>/<doubling step>". */
export const collectiveLinkId = (collective: string, step: number) => `${collective}/${step}`;

export function parseCollectiveId(id: string): { jobId: string; step: number; generation: number; link?: number } | undefined {
  const m = /^([^/]+)\/(\d+)\/(\d+)(?:\/(\d+))?$/.exec(id);
  if (!m) return undefined;
  const parsed = { jobId: m[1] as string, step: Number(m[2]), generation: Number(m[3]) };
  return m[4] === undefined ? parsed : { ...parsed, link: Number(m[4]) };
}
