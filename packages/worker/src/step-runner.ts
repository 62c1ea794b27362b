import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { BatchItem, checkFiniteVector, checkpointName, flatStats, LoadedImages, NonFiniteError, StorageError } from '@facenet/core';
import { collectiveId, datasetKind, HeldState, ShardJobData, ShardJobResult, StateQuery } from '@facenet/protocol';
import type { AllreducePeer } from './allreduce/ring-allreduce';
import type { ComputeClient } from './compute/compute-client';
import { InProcessLoader, StepLoader } from './data/step-loader';

/** What a step needs of the compute thread and of the ring (fakes in unit tests). */
export type StepCompute = Pick<ComputeClient, 'init' | 'gradients' | 'apply' | 'checkpoint' | 'state'> &
  Partial<Pick<ComputeClient, 'interrupt'>>;
export type StepCollective = Pick<AllreducePeer, 'allreduce'>;

/**
 * Runs one shard job: decode this rank's images (or take the prefetched ones), gradients in the
 * compute thread, allreduce with the ring, update in the compute thread, and on rank 0 the
 * checkpoint. The update is applied only after the allreduce has fully succeeded and the
 * non-finite guard passed, so a failed or rejected step leaves the weights at the last
 * committed step on every rank.
 */
export class StepRunner {
  /** What the compute thread holds: job, steps applied, and the generation that last used it. */
  private held: { jobId: string; step: number; generation: number } | undefined;
  /** The job whose step is running now, if one is. */
  private inFlight: string | undefined;
  private readonly loader: StepLoader;
  private prefetched: { key: string; shards: Promise<LoadedImages[]> } | undefined;
  /** Where the batch-norm statistics begin in the held model's flat vector (from the compute thread). */
  private bnOffset: number | undefined;

  /**
   * @param faults fault injection for tests and drills (FACENET_FAULT_NON_FINITE_AT_STEP): this
   * rank's gradients at that step become NaN before the allreduce, as an overflowing model's
   * would; spec limits keep a real learning rate from getting there quickly. exitAfterApplyAtStep
   * (FACENET_FAULT_EXIT_AFTER_APPLY_AT_STEP): the process exits right after applying that step,
   * before reporting it, as a rank killed at the worst moment would. Unset in service.
   * @param o prefetch: decode the next step's images during this step (default true); loader: where
   * images are decoded (the data thread in service; this thread by default).
   */
  constructor(
    private readonly compute: StepCompute,
    private readonly peer: StepCollective,
    private readonly faults: { nonFiniteAtStep?: number; exitAfterApplyAtStep?: number } = {},
    private readonly o: { prefetch?: boolean; loader?: StepLoader } = {},
  ) {
    this.loader = o.loader ?? new InProcessLoader();
  }

  /**
   * What decoded images depend on: dataset, items, size and augmentation (seeded by step). The
   * prefetch is keyed by this, so a step whose plan changed after its prefetch (a new mining
   * plan, a new world) decodes anew instead of training on the images of the old plan.
   */
  private static contentKey(data: ShardJobData, step: number, shards: BatchItem[][]): string {
    const t = data.train;
    return createHash('sha256')
      .update(JSON.stringify([data.jobId, data.dataset, data.dataIndex, t.model.imageSize, t.augment, t.seed, step, shards]))
      .digest('hex');
  }

  private load(data: ShardJobData, step: number, shards: BatchItem[][]): Promise<LoadedImages[]> {
    return this.loader.load({ spec: data.dataset, indexId: data.dataIndex }, shards, data.train, step);
  }

  /** The images of this step: the prefetched ones if they are exactly these, else decoded now. */
  private images(data: ShardJobData): Promise<LoadedImages[]> {
    const key = StepRunner.contentKey(data, data.step, data.shards);
    const shards = this.prefetched?.key === key ? this.prefetched.shards : this.load(data, data.step, data.shards);
    this.prefetched = undefined;
    if (data.prefetch && this.o.prefetch !== false) {
      const p = this.load(data, data.prefetch.step, data.prefetch.shards);
      p.catch(() => undefined); // a failed prefetch is retried by the next step's own load
      this.prefetched = { key: StepRunner.contentKey(data, data.prefetch.step, data.prefetch.shards), shards: p };
    }
    return shards;
  }

  async run(data: ShardJobData): Promise<ShardJobResult> {
    this.inFlight = data.jobId;
    try {
      return await this.runStep(data);
    } finally {
      this.inFlight = undefined;
    }
  }

  /**
   * Stops the step of `jobId` in flight, if one is (its job was cancelled): the loads and the
   * computation are abandoned mid-way and the step fails with InterruptedError. Nothing of it is
   * applied unless the update had already begun; either way the held weights are dropped, so the
   * next step of any job restores from a checkpoint. Returns whether there was a step to stop.
   */
  async interrupt(jobId: string, reason: string): Promise<boolean> {
    if (this.inFlight !== jobId) return false;
    this.held = undefined;
    this.prefetched = undefined;
    await Promise.all([this.loader.interrupt(reason), this.compute.interrupt?.(reason)]);
    return true;
  }

  /** Drops the data of a job that ended between steps (its source and decoded images); the weights stay. */
  async release(jobId: string): Promise<void> {
    if (this.held?.jobId !== jobId) return;
    this.prefetched = undefined;
    await this.loader.release();
  }

  private async runStep(data: ShardJobData): Promise<ShardJobResult> {
    const t0 = performance.now();
    const h = this.held;
    // Held weights carry over within a generation, or into a new one the coordinator verified
    // them for; otherwise (another job, another step, a rewind) load the step's checkpoint.
    if (!h || h.jobId !== data.jobId || h.step !== data.step || (h.generation !== data.generation && !data.trustHeld)) {
      this.held = undefined;
      const cropFraction = datasetKind(data.dataset).cropFraction(data.dataset);
      this.bnOffset = (
        await this.compute.init({
          jobId: data.jobId,
          step: data.step,
          train: data.train,
          restoreFrom: data.restoreFrom,
          preprocessing: { cropFraction },
        })
      ).bnOffset;
    }
    this.held = { jobId: data.jobId, step: data.step, generation: data.generation };
    const shards = await this.images(data);
    const t1 = performance.now();
    const flat = await this.compute.gradients({ shards: shards.map((s) => ({ images: s.data, labels: s.labels, count: s.count })) });
    if (this.faults.nonFiniteAtStep === data.step) flat[0] = Number.NaN;
    const t2 = performance.now();
    const reduced = await this.peer.allreduce(
      collectiveId(data.jobId, data.step, data.generation),
      flat,
      data.rank,
      data.ring,
      data.collectiveSecret,
      { compression: data.compression, algorithm: data.algorithm },
    );
    const t3 = performance.now();
    const stats = flatStats(flat);
    const result = (extra: Partial<ShardJobResult>, t4 = t3, t5 = t4): ShardJobResult => ({
      step: data.step,
      rank: data.rank,
      generation: data.generation,
      stats,
      timings: { dataMs: t1 - t0, computeMs: t2 - t1, allreduceMs: t3 - t2, optimizerMs: t4 - t3, checkpointMs: t5 - t4 },
      allreduceBytes: reduced.bytes,
      allreduceAlgorithm: reduced.algorithm,
      skipped: shards.flatMap((s) => s.skipped),
      ...extra,
    });
    let applied: { step: number; checksum?: string };
    try {
      checkFiniteVector(flat, data.step, this.bnOffset);
      this.held = undefined; // if apply fails half-way, the next step must restore
      applied = await this.compute.apply({ flat, step: data.step, learningRateScale: data.learningRateScale, checksum: data.checksum });
    } catch (err) {
      if (!(err instanceof NonFiniteError)) throw err;
      this.held = { jobId: data.jobId, step: data.step, generation: data.generation }; // the guard applied nothing
      return result({ nonFinite: err.message });
    }
    this.held = { jobId: data.jobId, step: applied.step, generation: data.generation };
    if (this.faults.exitAfterApplyAtStep === data.step) process.exit(137);
    const t4 = performance.now();
    let checkpoint: string | undefined;
    let checkpointError: ShardJobResult['checkpointError'];
    if (data.rank === 0 && data.checkpointDir) {
      try {
        checkpoint = await this.compute.checkpoint(join(data.checkpointDir, checkpointName(applied.step)));
      } catch (err) {
        // The update is applied on every rank; only the disk failed. Say so, and let the
        // coordinator decide (it pauses the job), instead of failing the step like a dead rank.
        if (!(err instanceof StorageError)) throw err;
        checkpointError = { path: err.path, code: err.code, reason: err.reason };
      }
    }
    return result({ checksum: applied.checksum, checkpoint, checkpointError }, t4, performance.now());
  }

  /** Answers a state query: what this rank holds for the job, written as a checkpoint if asked. */
  async state(q: StateQuery): Promise<HeldState | null> {
    if (this.held?.jobId !== q.jobId) return null;
    return this.compute.state(q.jobId, q.checkpointDir);
  }
}
