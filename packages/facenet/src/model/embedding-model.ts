import { tf } from '../backend/tf';
import { ConfigError } from '../errors';
import { BatchNormStats, LayerBuilder } from './layers';
import { NetBuilder } from './net-builder';
import { ParamStore } from './param-store';
import { ARCHITECTURES, ArchitectureName, ZOO } from './zoo';

export interface ModelOptions {
  /** One of the zoo's architectures. @default 'tiny' */
  architecture?: ArchitectureName;
  /** Square input size in pixels. @default the architecture's own (tiny 32, resnet-small 64, inception-small 96) */
  imageSize?: number;
  /** Embedding dimension. @default 128 (the paper's) */
  embeddingDim?: number;
  /** Channel width multiplier. @default 1 */
  width?: number;
  /** Seed of the weight initialisation. @default 1 */
  seed?: number;
}

export type ModelConfig = Required<ModelOptions>;

export function compileModelOptions(o: ModelOptions = {}): ModelConfig {
  const architecture = o.architecture ?? 'tiny';
  if (!ARCHITECTURES.includes(architecture)) {
    throw new ConfigError('model.architecture', `unknown '${architecture}', expected one of ${ARCHITECTURES.join(', ')}`);
  }
  const cfg: ModelConfig = {
    architecture,
    imageSize: o.imageSize ?? ZOO[architecture].defaultImageSize,
    embeddingDim: o.embeddingDim ?? 128,
    width: o.width ?? 1,
    seed: o.seed ?? 1,
  };
  if (!Number.isInteger(cfg.imageSize) || cfg.imageSize < 16 || cfg.imageSize > 512) {
    throw new ConfigError('model.imageSize', `must be an integer in [16, 512], got ${cfg.imageSize}`);
  }
  if (!Number.isInteger(cfg.embeddingDim) || cfg.embeddingDim < 2 || cfg.embeddingDim > 65536) {
    throw new ConfigError('model.embeddingDim', `must be an integer in [2, 65536], got ${cfg.embeddingDim}`);
  }
  if (!(cfg.width > 0 && cfg.width <= 4)) throw new ConfigError('model.width', `must be in (0, 4], got ${cfg.width}`);
  return cfg;
}

/** The whole network: the architecture's body, a dense layer to D, and the unit-sphere projection. */
export function embeddingNet<T>(b: NetBuilder<T>, images: T, config: ModelConfig): T {
  const features = ZOO[config.architecture].body(b, images, config.width);
  return b.l2Normalize(b.dense('embedding', features, config.embeddingDim));
}

/**
 * f(x): image batch [N, S, S, 3] (values in [-1, 1]) -> [N, D] on the unit sphere.
 * Trainable weights and batch-norm moving statistics live in named variables so that
 * checkpoints, optimizers and the allreduce can address them by name.
 */
export class EmbeddingModel {
  readonly config: ModelConfig;
  readonly store: ParamStore;

  constructor(options: ModelOptions = {}) {
    this.config = compileModelOptions(options);
    this.store = new ParamStore(this.config.seed);
    // Build the variables with one tiny pass (their shapes do not depend on the batch size).
    tf.tidy(() => {
      this.forward(tf.zeros([1, this.config.imageSize, this.config.imageSize, 3]), false);
    });
  }

  /** Trainable variables in a fixed order (sorted by name): the order of the gradient vector. */
  get trainableNames(): string[] {
    return [...this.store.trainable.keys()].sort();
  }

  get stateNames(): string[] {
    return [...this.store.state.keys()].sort();
  }

  get parameterCount(): number {
    let n = 0;
    for (const v of this.store.trainable.values()) n += v.size;
    return n;
  }

  /** The network. In training mode, batch statistics are written into `bnStats` (kept tensors). */
  forward(images: tf.Tensor4D, training: boolean, bnStats?: BatchNormStats): tf.Tensor2D {
    return embeddingNet(new LayerBuilder(this.store, training, bnStats), images, this.config) as tf.Tensor2D;
  }

  /** Inference embeddings, in batches so memory stays bounded. */
  embed(images: tf.Tensor4D, batchSize = 64): tf.Tensor2D {
    const n = images.shape[0];
    if (n <= batchSize) return tf.tidy(() => this.forward(images, false));
    const parts: tf.Tensor2D[] = [];
    try {
      for (let i = 0; i < n; i += batchSize) {
        parts.push(tf.tidy(() => this.forward(tf.slice(images, [i, 0, 0, 0], [Math.min(batchSize, n - i), -1, -1, -1]), false)));
      }
      return tf.concat(parts, 0);
    } finally {
      for (const p of parts) p.dispose();
    }
  }

  dispose(): void {
    this.store.dispose();
  }
}
