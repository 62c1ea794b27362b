import { join } from 'node:path';
import {
  BatchItem, checkpointName, DatasetSpec, FaceSource, flatStats, loadImages, LoadedImages, ShardJobData, ShardJobResult, sourceFromSpec,
} from '@facenet/core';
import { AllreducePeer } from './allreduce/ring-allreduce';
import { ComputeClient } from './compute/compute-client';

/**
 * Runs one shard job: decode this rank's images (or take the prefetched ones), gradients in the
 * compute thread, allreduce with the ring, update in the compute thread, and on rank 0 the
 * checkpoint. The update is applied only after the allreduce has fully succeeded, so a failed
 * step leaves the weights at the last committed step on every rank.
 */
export class StepRunner {
  /** What the compute thread holds: job and steps applied. */
  private held: { jobId: string; step: number } | undefined;
  private readonly sources = new Map<string, FaceSource>();
  private prefetched: { key: string; shards: Promise<LoadedImages[]> } | undefined;

  constructor(private readonly compute: ComputeClient, private readonly peer: AllreducePeer) {}

  private source(spec: DatasetSpec): FaceSource {
    const key = JSON.stringify(spec);
    let s = this.sources.get(key);
    if (!s) {
      s = sourceFromSpec(spec);
      this.sources.set(key, s);
    }
    return s;
  }

  private load(data: ShardJobData, step: number, shards: BatchItem[][]): Promise<LoadedImages[]> {
    const src = this.source(data.dataset);
    const t = data.train;
    const augment = t.augment ? { ...t.augment, seed: t.seed, step } : null;
    return Promise.all(shards.map((items) => loadImages(src, items, { size: t.model.imageSize, augment })));
  }

  async run(data: ShardJobData): Promise<ShardJobResult> {
    const t0 = performance.now();
    if (!this.held || this.held.jobId !== data.jobId || this.held.step !== data.step) {
      this.held = undefined;
      await this.compute.init({ jobId: data.jobId, step: data.step, train: data.train, restoreFrom: data.restoreFrom });
      this.held = { jobId: data.jobId, step: data.step };
    }
    const key = `${data.jobId}/${data.step}/${data.rank}/${data.world.length}`;
    const shards = await (this.prefetched?.key === key ? this.prefetched.shards : this.load(data, data.step, data.shards));
    this.prefetched = undefined;
    if (data.prefetch) {
      const p = this.load(data, data.prefetch.step, data.prefetch.shards);
      p.catch(() => undefined); // a failed prefetch is retried by the next step's own load
      this.prefetched = { key: `${data.jobId}/${data.prefetch.step}/${data.rank}/${data.world.length}`, shards: p };
    }
    const t1 = performance.now();
    const flat = await this.compute.gradients({ shards: shards.map((s) => ({ images: s.data, labels: s.labels, count: s.count })) });
    const t2 = performance.now();
    const reduced = await this.peer.allreduce(`${data.jobId}/${data.step}/${data.generation}`, flat, data.rank, data.world);
    const t3 = performance.now();
    const stats = flatStats(flat);
    this.held = undefined; // if apply fails half-way, the next step must restore
    const applied = await this.compute.apply({ flat, step: data.step, checksum: data.checksum });
    this.held = { jobId: data.jobId, step: applied.step };
    const t4 = performance.now();
    let checkpoint: string | undefined;
    if (data.rank === 0 && data.checkpointDir) checkpoint = await this.compute.checkpoint(join(data.checkpointDir, checkpointName(applied.step)));
    const t5 = performance.now();
    return {
      step: data.step, rank: data.rank, generation: data.generation, stats,
      timings: { dataMs: t1 - t0, computeMs: t2 - t1, allreduceMs: t3 - t2, optimizerMs: t4 - t3, checkpointMs: t5 - t4 },
      allreduceBytes: reduced.bytes, checksum: applied.checksum, checkpoint,
      skipped: shards.flatMap((s) => s.skipped),
    };
  }
}
