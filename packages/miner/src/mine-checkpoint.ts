import {
  confusableIdentities,
  embedImages,
  FaceSource,
  loadModel,
  logChanges,
  mineTriplets,
  mineTripletsRestrictedParallel,
  rngFor,
  shuffled,
  withEmbedder,
} from '@facenet/core';
import { curriculumAt, JobSpec, MiningPlan, sourceFromSpec, trainingSource } from '@facenet/protocol';
import { CompiledMinerOptions } from './miner-options';

/** Jobs whose training sources (and their decoded-image caches) the miner keeps between checkpoints. */
const MAX_HELD_SOURCES = 2;

/** What mining a checkpoint needs to know about its job. */
export interface MiningJob {
  jobId: string;
  spec: JobSpec;
  /** The id of the job's stored dataset index (absent: synthetic data). */
  dataIndex?: string;
  seed: number;
  margin: number;
}

/**
 * Embeds a bounded, seeded sample of each training identity with the checkpoint's weights and
 * mines it: semi-hard triplets at the curriculum's hardness, confusable identities, statistics.
 * The sources (and their decoded-image caches) live as long as the miner, so later checkpoints
 * of the same job decode nothing again.
 */
export class CheckpointMiner {
  private readonly sources = new Map<string, FaceSource>();

  private readonly log: (line: string) => void;

  constructor(
    private readonly o: CompiledMinerOptions,
    log: (line: string) => void = (l) => console.error(l),
  ) {
    this.log = logChanges(log);
  }

  /** `packed`: the job's stored index, used when its source is not held. */
  private trainSource(job: MiningJob, packed: Uint8Array | undefined): FaceSource {
    const key = JSON.stringify([job.spec.dataset, job.dataIndex, job.spec.holdout, job.seed]);
    let s = this.sources.get(key);
    if (!s) {
      s = trainingSource(sourceFromSpec(job.spec.dataset, packed), job.spec.holdout, job.seed).train;
      // The sources of the jobs mined last only: decoded images of finished jobs are not kept.
      if (this.sources.size >= MAX_HELD_SOURCES) this.sources.delete(this.sources.keys().next().value as string);
      this.sources.set(key, s);
    }
    return s;
  }

  async mine(
    job: MiningJob,
    checkpoint: string,
    step: number,
    packed?: Uint8Array,
  ): Promise<Omit<MiningPlan, 'version' | 'skippedSteps' | 'createdAt'>> {
    const cur = job.spec.curriculum;
    const train = this.trainSource(job, packed);
    const rng = rngFor(job.seed, 'miner-sample', step);
    const keys: string[] = [];
    const labels: number[] = [];
    train.index.images.forEach((imgs, id) => {
      for (const k of shuffled(imgs, rng).slice(0, cur.samplePerIdentity)) {
        keys.push(k);
        labels.push(id);
      }
    });
    const t0 = performance.now();
    const { model } = await loadModel(checkpoint);
    let embedded;
    try {
      embedded = await withEmbedder(model, { log: this.log }, (e) => embedImages(e, train, keys));
    } finally {
      model.dispose();
    }
    const ok = keys.flatMap((_, i) => (embedded.ok[i] ? [i] : []));
    const dim = embedded.dim;
    // In shared memory: the restricted search's scan thread reads it without a copy.
    const emb = new Float32Array(new SharedArrayBuffer(ok.length * dim * 4));
    ok.forEach((i, r) => emb.set(embedded.embeddings.subarray(i * dim, (i + 1) * dim), r * dim));
    const okLabels = ok.map((i) => labels[i] as number);
    const t1 = performance.now();
    const { hardness, floor } = curriculumAt(cur, step);
    const mineOptions = {
      margin: job.margin,
      hardness,
      floor,
      seed: job.seed,
      rowBlock: this.o.rowBlock,
      colBlock: this.o.colBlock,
      candidatesPerAnchor: this.o.candidatesPerAnchor,
    };
    // The exact scan is O(n^2): beyond exactUpTo embeddings, search each anchor's negatives among
    // its identity's nearest identities (recall >= 95% measured against the exact scan; README).
    const { triplets, stats } =
      ok.length <= this.o.exactUpTo
        ? await mineTriplets(emb, dim, okLabels, mineOptions)
        : await mineTripletsRestrictedParallel(emb, dim, okLabels, {
            ...mineOptions,
            neighbourIdentities: this.o.neighbourIdentities,
            randomCandidates: this.o.randomCandidates,
          });
    const conf = await confusableIdentities(emb, dim, okLabels, cur.confusableK);
    const t2 = performance.now();
    const pairCounts = new Map<string, number>();
    for (const t of triplets) {
      const key = `${okLabels[t.anchor]},${okLabels[t.negative]}`;
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + 1);
    }
    const pairs = [...pairCounts.entries()]
      .map(([k, n]) => [...k.split(',').map(Number), n] as [number, number, number])
      .sort((a, b) => b[2] - a[2] || a[0] - b[0] || a[1] - b[1]);
    const key = (row: number) => keys[ok[row] as number] as string;
    return {
      jobId: job.jobId,
      step,
      checkpoint,
      hardness,
      floor,
      pairs,
      confusable: Object.fromEntries([...conf.entries()].map(([id, nn]) => [String(id), nn.map((x) => x.identity)])),
      sample: triplets
        .slice(0, this.o.sampleTriplets)
        .map((t) => ({ anchor: key(t.anchor), positive: key(t.positive), negative: key(t.negative), dap: t.dap, dan: t.dan })),
      stats,
      timings: { embedMs: t1 - t0, mineMs: t2 - t1, images: ok.length },
    };
  }
}
