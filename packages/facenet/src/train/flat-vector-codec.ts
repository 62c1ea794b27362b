import { tf } from '../backend/tf';
import { EmbeddingModel } from '../model/embedding-model';
import { ShardGradients, TripletStats } from './shard-gradients';

/**
 * One float32 vector holding everything a step averages across ranks: the gradient of every
 * trainable variable (sorted by name), every batch-norm layer's batch mean and variance, the
 * number of shards, and the shards' statistics. Summing these vectors across ranks (the
 * allreduce) and dividing by the shard count gives exactly the single-process mean.
 */
export interface FlatLayout {
  grads: { name: string; shape: number[]; offset: number; size: number }[];
  bn: { layer: string; channels: number; meanOffset: number; varianceOffset: number }[];
  /** Offset of the batch-norm statistics (where the gradients end). */
  bnOffset: number;
  /** Offset of [shards, loss, activeFraction, d(a,p), d(a,n), images, triplets, classification loss, classification accuracy]. */
  statsOffset: number;
  length: number;
}

/** Elements of step statistics at the end of every flat vector. */
export const FLAT_STATS = 9;

export function flatLayout(model: EmbeddingModel): FlatLayout {
  let offset = 0;
  const grads = model.trainableNames.map((name) => {
    const v = model.store.trainable.get(name) as tf.Variable;
    const e = { name, shape: v.shape, offset, size: v.size };
    offset += v.size;
    return e;
  });
  const bnOffset = offset;
  const layers = [...new Set(model.stateNames.map((n) => n.replace(/\/moving_(mean|variance)$/, '')))].sort();
  const bn = layers.map((layer) => {
    const channels = (model.store.state.get(`${layer}/moving_mean`) as tf.Variable).size;
    const e = { layer, channels, meanOffset: offset, varianceOffset: offset + channels };
    offset += 2 * channels;
    return e;
  });
  return { grads, bn, bnOffset, statsOffset: offset, length: offset + FLAT_STATS };
}

/** Writes a (summed) shard gradient and its statistics into a new flat vector. */
export async function flattenGradients(
  layout: FlatLayout,
  g: ShardGradients,
  shards: number,
  stats: TripletStats[],
): Promise<Float32Array> {
  const flat = new Float32Array(layout.length);
  for (const e of layout.grads) flat.set((await (g.grads.get(e.name) as tf.Tensor).data()) as Float32Array, e.offset);
  for (const e of layout.bn) {
    const s = g.bnStats.get(e.layer);
    if (!s) continue;
    flat.set((await s.mean.data()) as Float32Array, e.meanOffset);
    flat.set((await s.variance.data()) as Float32Array, e.varianceOffset);
  }
  const o = layout.statsOffset;
  flat[o] = shards;
  for (const s of stats) {
    flat[o + 1] = (flat[o + 1] as number) + s.loss;
    flat[o + 2] = (flat[o + 2] as number) + s.activeFraction;
    flat[o + 3] = (flat[o + 3] as number) + s.meanPositiveDistance;
    flat[o + 4] = (flat[o + 4] as number) + s.meanNegativeDistance;
    flat[o + 5] = (flat[o + 5] as number) + s.images;
    flat[o + 6] = (flat[o + 6] as number) + s.triplets;
    flat[o + 7] = (flat[o + 7] as number) + s.classificationLoss;
    flat[o + 8] = (flat[o + 8] as number) + s.classificationAccuracy;
  }
  return flat;
}

/** The summed gradients of a flat vector as tensors (the caller disposes them), and its shard count. */
export function unflattenGradients(layout: FlatLayout, flat: Float32Array): { summed: ShardGradients; shards: number } {
  const grads = new Map<string, tf.Tensor>();
  for (const e of layout.grads) grads.set(e.name, tf.tensor(flat.subarray(e.offset, e.offset + e.size), e.shape));
  const bnStats: ShardGradients['bnStats'] = new Map();
  for (const e of layout.bn) {
    bnStats.set(e.layer, {
      mean: tf.tensor1d(flat.subarray(e.meanOffset, e.meanOffset + e.channels)),
      variance: tf.tensor1d(flat.subarray(e.varianceOffset, e.varianceOffset + e.channels)),
    });
  }
  return { summed: { grads, bnStats, stats: flatStats(flat) }, shards: flat[layout.statsOffset] as number };
}

/** The step's statistics from a summed flat vector (means over shards); they are its last elements. */
export function flatStats(flat: Float32Array): TripletStats {
  const o = flat.length - FLAT_STATS;
  const n = Math.max(1, flat[o] as number);
  return {
    loss: (flat[o + 1] as number) / n,
    activeFraction: (flat[o + 2] as number) / n,
    meanPositiveDistance: (flat[o + 3] as number) / n,
    meanNegativeDistance: (flat[o + 4] as number) / n,
    images: flat[o + 5] as number,
    triplets: flat[o + 6] as number,
    classificationLoss: (flat[o + 7] as number) / n,
    classificationAccuracy: (flat[o + 8] as number) / n,
  };
}
