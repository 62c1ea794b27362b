import { tf } from '../backend/tf';
import { BatchNormStats } from '../model/layers';
import { EmbeddingModel } from '../model/embedding-model';
import { SelectionStrategy } from '../loss/triplet-selection';
import { pairwiseSquaredDistances, Preselection, tripletLoss } from '../loss/triplet-loss';
import { selectTriplets } from '../loss/triplet-selection';
import { accuracyOf, classificationLoss, predictedClasses } from '../loss/classification-loss';
import { checkGpuFaults, readsSynchronously } from '../backend/webgpu';
import { BackendError } from '../errors';
import { CLASS_WEIGHTS, ClassificationConfig } from './objective';

/** What one shard (or a whole step) reports about its triplets. */
export interface TripletStats {
  loss: number;
  /** Fraction of considered triplets with non-zero loss. */
  activeFraction: number;
  meanPositiveDistance: number;
  meanNegativeDistance: number;
  triplets: number;
  images: number;
  /** Cross-entropy of the classification term (0 when the step has none). */
  classificationLoss: number;
  /** Fraction of images the class weights classified right (0 when the step has none). */
  classificationAccuracy: number;
}

/** A step's objective: the weights of its two terms (see lossWeightsAt) and the classification settings. */
export interface StepObjective {
  triplet: number;
  classification: number;
  settings: ClassificationConfig | false;
}

/** The paper's objective: the triplet loss alone. */
export const TRIPLET_ONLY: StepObjective = { triplet: 1, classification: 0, settings: false };

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
 * on how shards are spread over processes. The loss is triplet x w_t + classification x w_c;
 * the triplet selection runs (and is reported) even at w_t = 0, so runs stay comparable.
 */
export function computeShardGradients(
  model: EmbeddingModel,
  shard: ShardInput,
  strategy: SelectionStrategy,
  margin: number,
  objective: StepObjective = TRIPLET_ONLY,
): ShardGradients {
  const { gradients, classLoss } = tapeGradients(model, shard, strategy, margin, objective);
  if (classLoss) {
    gradients.stats.classificationLoss = classLoss.dataSync()[0] as number;
    classLoss.dispose();
  }
  return gradients;
}

/** The gradient pass; the classification loss comes back as a tensor, for the caller to read as its backend allows. */
function tapeGradients(
  model: EmbeddingModel,
  shard: ShardInput,
  strategy: SelectionStrategy,
  margin: number,
  objective: StepObjective,
  preselected?: ShardPreselection,
): { gradients: ShardGradients; classLoss?: tf.Tensor } {
  const size = model.config.imageSize;
  const names = model.trainableNames;
  const vars = names.map((n) => model.store.trainable.get(n) as tf.Variable);
  const bnStats: BatchNormStats = new Map();
  let selection: ReturnType<typeof tripletLoss>['selection'] | undefined;
  let classification = { loss: 0, accuracy: 0 };
  const cls = objective.classification > 0 ? objective.settings : false;
  const classWeights = cls ? (model.store.trainable.get(CLASS_WEIGHTS) as tf.Tensor2D | undefined) : undefined;
  if (cls && !classWeights)
    throw new Error(`the objective has a classification term but the model has no '${CLASS_WEIGHTS}' (build it with trainingModel)`);
  let classLoss: tf.Tensor | undefined;
  const { value, grads } = tf.tidy(() => {
    const x = tf.tensor4d(shard.images, [shard.count, size, size, 3]);
    return tf.variableGrads(() => {
      const emb = model.forward(x, true, bnStats);
      const r = tripletLoss(emb, shard.labels, strategy, margin, preselected?.triplets);
      selection = r.selection;
      let loss = objective.triplet === 1 ? r.loss : (tf.mul(r.loss, objective.triplet) as tf.Scalar);
      if (cls && classWeights) {
        const c = classificationLoss(emb, shard.labels, classWeights, cls.head, cls.scale, cls.margin, preselected?.classAccuracy);
        classification = { loss: 0, accuracy: c.accuracy };
        classLoss = tf.keep(c.loss.clone());
        loss = tf.add(loss, tf.mul(c.loss, objective.classification)) as tf.Scalar;
      }
      return loss;
    }, vars);
  });
  value.dispose();
  const byName = new Map<string, tf.Tensor>();
  names.forEach((n, i) => byName.set(n, grads[(vars[i] as tf.Variable).name] as tf.Tensor));
  const s = selection as NonNullable<typeof selection>;
  return {
    classLoss,
    gradients: {
      grads: byName,
      bnStats,
      stats: {
        loss: s.loss,
        activeFraction: s.total ? s.active / s.total : 0,
        meanPositiveDistance: s.meanPositiveDistance,
        meanNegativeDistance: s.meanNegativeDistance,
        triplets: s.total,
        images: shard.count,
        classificationLoss: classification.loss,
        classificationAccuracy: classification.accuracy,
      },
    },
  };
}

/** What selectBeforeTape read: the triplets chosen, and the classification head's accuracy. */
export interface ShardPreselection {
  triplets: Preselection;
  classAccuracy?: number;
}

/**
 * computeShardGradients on any backend: where values cannot be read synchronously (webgpu), a
 * forward pass without a tape computes the distances and predictions, read asynchronously, and
 * the selection made from them is handed to the gradient pass, which computes the same
 * embeddings again (one forward more, about a third of the step's compute). Elsewhere it is
 * computeShardGradients itself.
 */
export async function shardGradients(
  model: EmbeddingModel,
  shard: ShardInput,
  strategy: SelectionStrategy,
  margin: number,
  objective: StepObjective = TRIPLET_ONLY,
): Promise<ShardGradients> {
  if (readsSynchronously(tf.getBackend())) return computeShardGradients(model, shard, strategy, margin, objective);
  const preselected = await selectBeforeTape(model, shard, strategy, margin, objective);
  const { gradients, classLoss } = tapeGradients(model, shard, strategy, margin, objective, preselected);
  try {
    if (classLoss) gradients.stats.classificationLoss = (await classLoss.data())[0] as number;
    checkGpuFaults((m) => new BackendError(`the GPU refused a kernel of the gradient pass: ${m}`));
    return gradients;
  } catch (err) {
    disposeGradients(gradients);
    throw err;
  } finally {
    classLoss?.dispose();
  }
}

async function selectBeforeTape(
  model: EmbeddingModel,
  shard: ShardInput,
  strategy: SelectionStrategy,
  margin: number,
  objective: StepObjective,
): Promise<ShardPreselection> {
  const size = model.config.imageSize;
  const classWeights =
    objective.classification > 0 && objective.settings ? (model.store.trainable.get(CLASS_WEIGHTS) as tf.Tensor2D | undefined) : undefined;
  const [dist, predicted] = tf.tidy(() => {
    const emb = model.forward(tf.tensor4d(shard.images, [shard.count, size, size, 3]), true);
    return [pairwiseSquaredDistances(emb), classWeights ? predictedClasses(emb, classWeights) : undefined] as const;
  });
  try {
    const distances = (await dist.data()) as Float32Array;
    return {
      triplets: { distances, selection: selectTriplets(distances, shard.labels, strategy, margin) },
      classAccuracy: predicted ? accuracyOf(await predicted.data(), shard.labels) : undefined,
    };
  } finally {
    dist.dispose();
    predicted?.dispose();
  }
}

/** Mean of the shards' statistics (each shard weighs the same, like its gradient). */
export function meanStats(all: TripletStats[]): TripletStats {
  const n = Math.max(1, all.length);
  const avg = (f: (s: TripletStats) => number) => all.reduce((a, s) => a + f(s), 0) / n;
  return {
    loss: avg((s) => s.loss),
    activeFraction: avg((s) => s.activeFraction),
    meanPositiveDistance: avg((s) => s.meanPositiveDistance),
    meanNegativeDistance: avg((s) => s.meanNegativeDistance),
    triplets: all.reduce((a, s) => a + s.triplets, 0),
    images: all.reduce((a, s) => a + s.images, 0),
    classificationLoss: avg((s) => s.classificationLoss),
    classificationAccuracy: avg((s) => s.classificationAccuracy),
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
    if (!prev) {
      a.bnStats.set(k, s);
      continue;
    }
    a.bnStats.set(k, { mean: tf.add(prev.mean, s.mean), variance: tf.add(prev.variance, s.variance) });
    for (const t of [prev.mean, prev.variance, s.mean, s.variance]) t.dispose();
  }
  return a;
}

export function disposeGradients(g: ShardGradients): void {
  for (const t of g.grads.values()) t.dispose();
  for (const s of g.bnStats.values()) {
    s.mean.dispose();
    s.variance.dispose();
  }
}
