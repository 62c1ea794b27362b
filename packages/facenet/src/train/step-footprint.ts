import { decodeSide } from '../data/augment';
import { modelFootprint } from '../model/footprint';
import type { TrainConfig } from './train-options';

/** How many images one rank handles in a step, and in its largest virtual shard. */
export interface RankLoad {
  imagesOnRank: number;
  imagesPerShard: number;
}

export interface StepFootprint {
  /** Peak bytes a rank needs for the step: weights and optimizer, images, activations, distances. */
  memoryBytes: number;
  /** FLOPs of the step's forward and backward passes on one rank. */
  flops: number;
  /** Pixels the rank decodes or draws (data time grows with it). */
  decodedPixels: number;
  /** Bytes of the step's largest single tensor (a shard's input or stem activation): one GPU buffer. */
  largestTensorBytes: number;
}

/**
 * The images of one rank's share of a step: the batch splits into virtual shards (whole
 * identities) and each rank takes ceil(shards / W) of them, computing one shard at a time.
 */
export function rankLoad(train: TrainConfig, worldSize: number): RankLoad {
  const batch = train.batch.P * train.batch.K + train.batch.singletonNegatives;
  const imagesPerShard = Math.ceil(batch / train.virtualShards);
  const shardsOnRank = Math.ceil(train.virtualShards / Math.max(1, worldSize));
  return { imagesOnRank: Math.min(batch, imagesPerShard * shardsOnRank), imagesPerShard };
}

/** Copies of the parameter vector a rank holds: weights, two Adam slots, the gradient, and the flat vectors of the allreduce. */
const PARAMETER_COPIES = 10;
/** Forward activations are kept for the backward pass, which makes gradients of the same size, plus workspace (a real shard peaked at 2.7x its forward activations, footprint.test.ts). */
const ACTIVATION_FACTOR = 3.5;

/**
 * A step's cost on one rank, estimated from the configuration before any of it is allocated, so a
 * spec that cannot fit is refused at admission instead of discovered by a worker that stops
 * answering. Errs large: test/unit/footprint.test.ts holds it above a real step's peak.
 */
export function stepFootprint(train: TrainConfig, load: RankLoad): StepFootprint {
  const m = modelFootprint(train.model);
  const size = train.model.imageSize;
  const side = decodeSide(size, train.augment ? train.augment.cropMargin : 0);
  const classWeights = (train.classification ? train.classification.classes : 0) * train.model.embeddingDim;
  const n = load.imagesOnRank;
  const s = load.imagesPerShard;
  // A step's images and the next step's (prefetched), as decoded bytes and as model input floats.
  const images = 2 * n * (side * side * 3 + size * size * 3 * 4);
  const activations = s * m.activationsPerImage * 4 * ACTIVATION_FACTOR;
  // Pairwise squared distances of a shard's embeddings, with their gradient and masks.
  const distances = s * s * 4 * 4;
  return {
    memoryBytes: (m.parameters + classWeights) * 4 * PARAMETER_COPIES + images + activations + distances,
    flops: 3 * n * m.flopsPerImage,
    decodedPixels: n * side * side,
    largestTensorBytes: Math.max(s * m.largestTensorPerImage, m.largestWeight, classWeights, s * s) * 4,
  };
}
