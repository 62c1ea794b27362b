import { tf } from '../backend/tf';
import { BatchNormStats } from '../model/layers';
import { EmbeddingModel } from '../model/embedding-model';
import { SelectionStrategy } from '../loss/triplet-selection';
import { tripletLoss } from '../loss/triplet-loss';
import { Optimizer } from '../optim/optimizer';

/** What one shard (or a whole step) reports about its triplets. */
export interface TripletStats {
  loss: number;
  /** Fraction of considered triplets with non-zero loss. */
  activeFraction: number;
  meanPositiveDistance: number;
  meanNegativeDistance: number;
  triplets: number;
  images: number;
}

export interface ShardGradients {
  /** Gradient per trainable variable name (kept tensors: the caller disposes). */
  grads: Map<string, tf.Tensor>;
  /** Batch-norm batch statistics per layer (kept tensors). */
  bnStats: BatchNormStats;
  stats: TripletStats;
}

export interface ShardInput {
  images: Float32Array;
  labels: Int32Array;
  count: number;
}

/**
 * Forward, triplet selection and backward for one identity-balanced shard. Selection and
 * batch-norm statistics are local to the shard, so the mean of shard gradients does not depend
 * on how shards are spread over processes.
 */
export function computeShardGradients(
  model: EmbeddingModel, shard: ShardInput, strategy: SelectionStrategy, margin: number,
): ShardGradients {
  const size = model.config.imageSize;
  const names = model.trainableNames;
  const vars = names.map((n) => model.store.trainable.get(n) as tf.Variable);
  const bnStats: BatchNormStats = new Map();
  let selection: ReturnType<typeof tripletLoss>['selection'] | undefined;
  const { value, grads } = tf.tidy(() => {
    const x = tf.tensor4d(shard.images, [shard.count, size, size, 3]);
    return tf.variableGrads(() => {
      const emb = model.forward(x, true, bnStats);
      const r = tripletLoss(emb, shard.labels, strategy, margin);
      selection = r.selection;
      return r.loss;
    }, vars);
  });
  value.dispose();
  const byName = new Map<string, tf.Tensor>();
  names.forEach((n, i) => byName.set(n, grads[(vars[i] as tf.Variable).name] as tf.Tensor));
  const s = selection as NonNullable<typeof selection>;
  return {
    grads: byName,
    bnStats,
    stats: {
      loss: s.loss, activeFraction: s.total ? s.active / s.total : 0,
      meanPositiveDistance: s.meanPositiveDistance, meanNegativeDistance: s.meanNegativeDistance,
      triplets: s.total, images: shard.count,
    },
  };
}

/** Mean of the shards' statistics (each shard weighs the same, like its gradient). */
export function meanStats(all: TripletStats[]): TripletStats {
  const n = Math.max(1, all.length);
  const avg = (f: (s: TripletStats) => number) => all.reduce((a, s) => a + f(s), 0) / n;
  return {
    loss: avg((s) => s.loss), activeFraction: avg((s) => s.activeFraction),
    meanPositiveDistance: avg((s) => s.meanPositiveDistance), meanNegativeDistance: avg((s) => s.meanNegativeDistance),
    triplets: all.reduce((a, s) => a + s.triplets, 0), images: all.reduce((a, s) => a + s.images, 0),
  };
}

/** Sums `b` into the accumulator `a` (taking ownership of b's tensors). */
export function accumulate(a: ShardGradients | undefined, b: ShardGradients): ShardGradients {
  if (!a) return b;
  for (const [k, g] of b.grads) {
    const prev = a.grads.get(k) as tf.Tensor;
    a.grads.set(k, tf.add(prev, g));
    prev.dispose();
    g.dispose();
  }
  for (const [k, s] of b.bnStats) {
    const prev = a.bnStats.get(k);
    if (!prev) { a.bnStats.set(k, s); continue; }
    a.bnStats.set(k, { mean: tf.add(prev.mean, s.mean), variance: tf.add(prev.variance, s.variance) });
    for (const t of [prev.mean, prev.variance, s.mean, s.variance]) t.dispose();
  }
  return a;
}

export function disposeGradients(g: ShardGradients): void {
  for (const t of g.grads.values()) t.dispose();
  for (const s of g.bnStats.values()) { s.mean.dispose(); s.variance.dispose(); }
}

/**
 * Applies the optimizer with the summed gradients divided by `count`, and moves batch-norm
 * moving statistics toward the mean of the shards' batch statistics.
 */
export function applyUpdate(
  model: EmbeddingModel, optimizer: Optimizer, summed: ShardGradients, count: number, lr: number, bnMomentum: number,
): void {
  const mean = new Map<string, tf.Tensor>();
  try {
    for (const [k, g] of summed.grads) mean.set(k, tf.div(g, count));
    optimizer.apply(model.store.trainable, mean, lr);
    tf.tidy(() => {
      for (const [name, s] of summed.bnStats) {
        const mm = model.store.state.get(`${name}/moving_mean`);
        const mv = model.store.state.get(`${name}/moving_variance`);
        mm?.assign(tf.add(tf.mul(mm, bnMomentum), tf.mul(tf.div(s.mean, count), 1 - bnMomentum)));
        mv?.assign(tf.add(tf.mul(mv, bnMomentum), tf.mul(tf.div(s.variance, count), 1 - bnMomentum)));
      }
    });
  } finally {
    for (const t of mean.values()) t.dispose();
  }
}
