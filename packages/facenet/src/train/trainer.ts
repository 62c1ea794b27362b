import { join } from 'node:path';
import { CheckpointError, ConfigError } from '../errors';
import { readCheckpoint, restoreCheckpoint, writeCheckpoint } from '../checkpoint/checkpoint';
import { FaceSource } from '../data/face-source';
import { LoadedImages, SkippedImage } from '../data/load-images';
import { samplePK, splitByIdentity } from '../data/pk-sampler';
import { evaluatePairs, EvaluationResult } from '../eval/evaluate-pairs';
import { PairSet } from '../eval/holdout-pairs';
import { EmbeddingModel } from '../model/embedding-model';
import { Optimizer } from '../optim/optimizer';
import { learningRateAt } from '../optim/schedule';
import { meanStats, TripletStats } from './shard-gradients';
import { applyStep, loadStepShards, stepGradients } from './training-step';
import { compileTrainOptions, TrainConfig, TrainOptions } from './train-options';
import { trainingModel } from './objective';

export interface StepReport extends TripletStats {
  /** 0-based index of the step just completed. */
  step: number;
  learningRate: number;
  skipped: SkippedImage[];
  timings: { dataMs: number; computeMs: number; optimizerMs: number };
  imagesPerSecond: number;
}

export interface TrainerEvents {
  onStep?: (r: StepReport) => void;
  onEvaluate?: (r: EvaluationResult, step: number) => void;
  onCheckpoint?: (dir: string, step: number) => void;
}

export const checkpointName = (step: number) => `step-${String(step).padStart(6, '0')}`;

/**
 * Single-process training: identity-balanced P x K batches, virtual shards, online triplet
 * selection, optimizer update, periodic evaluation and checkpoints. The distributed worker's
 * compute thread runs the same step (training-step.ts) with the allreduce in the middle; this
 * loop is its one-process reference.
 */
export class Trainer {
  readonly config: TrainConfig;
  readonly model: EmbeddingModel;
  readonly optimizer: Optimizer;
  /** Steps completed so far. */
  step = 0;
  lastEvaluation: (EvaluationResult & { step: number }) | undefined;
  skippedTotal = 0;

  constructor(
    readonly source: FaceSource,
    options: TrainOptions,
    readonly evalSet?: { source: FaceSource; pairs: PairSet },
  ) {
    // compileTrainOptions is idempotent, so a saved TrainConfig (resume) passes through it too.
    this.config = compileTrainOptions(options);
    if (this.config.classification) this.config.classification.classes = source.index.images.length;
    this.model = trainingModel(this.config.model, this.config.classification);
    this.optimizer = new Optimizer(this.config.optimizer);
  }

  /** A trainer continuing from a checkpoint: same config, weights, optimizer slots and step. */
  static async resume(
    dir: string,
    source: FaceSource,
    overrides: Partial<TrainConfig> = {},
    evalSet?: Trainer['evalSet'],
  ): Promise<Trainer> {
    const ckpt = await readCheckpoint(dir);
    const saved = ckpt.manifest.training as TrainConfig | undefined;
    if (!saved) throw new CheckpointError(dir, 'has no training configuration; it can be used for inference only');
    // Checkpoints written before the online selection was renamed store it as `mining`.
    const { mining, ...current } = saved as TrainConfig & { mining?: TrainConfig['selection'] };
    const t = new Trainer(source, { ...current, selection: current.selection ?? mining, ...overrides }, evalSet);
    if (t.config.steps < ckpt.manifest.step) {
      t.dispose();
      throw new ConfigError(
        'steps',
        `must be at least the checkpoint's step ${ckpt.manifest.step} to resume from ${dir}, got ${t.config.steps}`,
      );
    }
    restoreCheckpoint(ckpt, t.model, t.optimizer, dir);
    t.step = ckpt.manifest.step;
    return t;
  }

  private loadStep(step: number): Promise<LoadedImages[]> {
    const c = this.config;
    return loadStepShards(this.source, splitByIdentity(samplePK(this.source.index, c.batch, c.seed, step), c.virtualShards), c, step);
  }

  /** Runs until `config.steps` (or `untilStep`) or until `signal` aborts, between steps. */
  async run(events: TrainerEvents = {}, signal?: AbortSignal, untilStep = this.config.steps): Promise<void> {
    const c = this.config;
    let next = this.step < untilStep ? this.loadStep(this.step) : undefined;
    while (this.step < untilStep && !signal?.aborted) {
      const s = this.step;
      const t0 = performance.now();
      const shards = await (next as Promise<LoadedImages[]>);
      // Prefetch: decoding of step s+1 starts before step s computes.
      next = s + 1 < untilStep ? this.loadStep(s + 1) : undefined;
      const t1 = performance.now();
      const { summed, stats } = await stepGradients(
        this.model,
        shards.map((sh) => ({ images: sh.data, labels: sh.labels, count: sh.count })),
        c,
        s,
      );
      const t2 = performance.now();
      const lr = summed
        ? await applyStep(this.model, this.optimizer, summed, stats.length, c, s)
        : learningRateAt(c.optimizer.learningRate, c.schedule, s);
      const t3 = performance.now();
      this.step = s + 1;
      const skipped = shards.flatMap((sh) => sh.skipped);
      this.skippedTotal += skipped.length;
      const m = meanStats(stats);
      events.onStep?.({
        ...m,
        step: s,
        learningRate: lr,
        skipped,
        timings: { dataMs: t1 - t0, computeMs: t2 - t1, optimizerMs: t3 - t2 },
        imagesPerSecond: m.images / ((t3 - t0) / 1000),
      });
      const last = this.step === untilStep;
      if (this.evalSet && ((c.evaluateEvery > 0 && this.step % c.evaluateEvery === 0) || last)) {
        const r = await this.evaluate();
        events.onEvaluate?.(r, this.step);
      }
      if (c.checkpointDir && ((c.checkpointEvery > 0 && this.step % c.checkpointEvery === 0) || last)) {
        const dir = await this.saveCheckpoint();
        events.onCheckpoint?.(dir, this.step);
      }
    }
    // An aborted run leaves a prefetch in flight; let it settle so no rejection goes unhandled.
    await next?.catch(() => undefined);
  }

  async evaluate(): Promise<EvaluationResult> {
    if (!this.evalSet) throw new ConfigError('evalSet', 'this trainer has no evaluation set');
    const r = await evaluatePairs(this.model, this.evalSet.source, this.evalSet.pairs);
    this.lastEvaluation = { ...r, step: this.step };
    return r;
  }

  async saveCheckpoint(dir = join(this.config.checkpointDir ?? '.', checkpointName(this.step))): Promise<string> {
    const e = this.lastEvaluation;
    await writeCheckpoint(dir, this.model, this.optimizer, {
      step: this.step,
      seed: this.config.seed,
      training: this.config,
      overwrite: true,
      preprocessing: { cropFraction: this.source.cropFraction ?? 1 },
      evaluation: e && { threshold: e.report.threshold, accuracy: e.report.accuracy, val: e.report.val, far: e.report.far, step: e.step },
    });
    return dir;
  }

  dispose(): void {
    this.model.dispose();
    this.optimizer.dispose();
  }
}
