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

export async function loadStepShards(
  source: FaceSource,
  shards: BatchItem[][],
  config: TrainConfig,
  step: number,
): Promise<LoadedImages[]> {
  const augment = config.augment ? { ...config.augment, seed: config.seed, step } : null;
  const listed = listedIn(source);
  return Promise.all(
    shards.map(async (items) => {
      const unlisted = items.filter((item) => !listed(item));
      const loaded = await loadImages(source, unlisted.length ? items.filter(listed) : items, { size: config.model.imageSize, augment });
      for (const item of unlisted)
        loaded.skipped.push({ key: item.key, reason: `not listed for identity ${item.identity} in the dataset's index` });
      return loaded;
    }),
  );
}

/**
 * Whether a shard job's item names an image the dataset's index lists under that identity. Items
 * come from outside the worker (a Redis stream), so a forged key must never reach a reader (a
 * path or a byte range of its choosing); it is skipped and counted like an undecodable image.
 * Only the identities drawn are expanded (a packed index builds an identity's keys when read).
 */
function listedIn(source: FaceSource): (item: BatchItem) => boolean {
  const keysOf = new Map<number, Set<string>>();
  const n = source.index.names.length;
  return (item) => {
    if (!Number.isInteger(item.identity) || item.identity < 0 || item.identity >= n) return false;
    let keys = keysOf.get(item.identity);
    if (!keys) keysOf.set(item.identity, (keys = new Set(source.index.images[item.identity])));
    return keys.has(item.key);
  };
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
