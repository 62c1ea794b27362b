import { FaceSource } from '../data/face-source';
import { loadImages, LoadedImages } from '../data/load-images';
import { BatchItem } from '../data/pk-sampler';
import { EmbeddingModel } from '../model/embedding-model';
import { Optimizer } from '../optim/optimizer';
import { learningRateAt } from '../optim/schedule';
import { applyUpdateGuarded } from './guarded-update';
import { TrainConfig } from './train-options';
import { lossWeightsAt } from './objective';
import { accumulate, disposeGradients, shardGradients, ShardGradients, ShardInput, TripletStats } from './shard-gradients';

/**
 * One training step, in three parts, shared by the one-process Trainer and the worker. In the
 * worker, part 1 and the allreduce run on its main thread (step-runner.ts) and parts 2 and 3 in
 * its compute thread, with the allreduce between them:
 *  1. loadStepShards: decode (and augment, seeded by step) the images of the step's virtual shards;
 *  2. stepGradients: forward, online triplet selection (and the classification term, if any) and
 *     backward per virtual shard, summed;
 *  3. applyStep: the optimizer update with the mean gradient, refused if it makes weights NaN/Inf.
 * Each part frees what it allocated on every path, a throw included.
 */

export function loadStepShards(source: FaceSource, shards: BatchItem[][], config: TrainConfig, step: number): Promise<LoadedImages[]> {
  const augment = config.augment ? { ...config.augment, seed: config.seed, step } : null;
  return Promise.all(shards.map((items) => loadImages(source, items, { size: config.model.imageSize, augment })));
}

/** The summed gradients of step `step`'s non-empty shards (the caller owns `summed`), and each shard's statistics. */
export async function stepGradients(
  model: EmbeddingModel,
  shards: ShardInput[],
  config: TrainConfig,
  step: number,
): Promise<{ summed?: ShardGradients; stats: TripletStats[] }> {
  let summed: ShardGradients | undefined;
  const stats: TripletStats[] = [];
  const objective = { ...lossWeightsAt(config.classification, step), settings: config.classification };
  try {
    for (const shard of shards) {
      if (shard.count === 0) continue;
      const g = await shardGradients(model, shard, config.selection, config.margin, objective);
      stats.push(g.stats);
      summed = accumulate(summed, g);
    }
    return { summed, stats };
  } catch (err) {
    if (summed) disposeGradients(summed);
    throw err;
  }
}

/**
 * Applies the mean of `shards` summed shard gradients at the scheduled learning rate (times
 * `learningRateScale`), and frees `summed` whatever happens. Throws NonFiniteError, with
 * nothing applied, when the update would make any weight NaN or Inf. Returns the rate used.
 */
export async function applyStep(
  model: EmbeddingModel,
  optimizer: Optimizer,
  summed: ShardGradients,
  shards: number,
  config: TrainConfig,
  step: number,
  learningRateScale = 1,
): Promise<number> {
  try {
    const lr = learningRateAt(config.optimizer.learningRate, config.schedule, step) * learningRateScale;
    if (shards > 0) await applyUpdateGuarded(model, optimizer, summed, shards, lr, config.bnMomentum, step);
    return lr;
  } finally {
    disposeGradients(summed);
  }
}
