import { ConfigError } from '../errors';
import { CLASSIFICATION_HEADS, ClassificationHead } from '../loss/classification-loss';
import { EmbeddingModel } from '../model/embedding-model';

export const CLASSIFICATION_MODES = ['beside', 'alone', 'warmup'] as const;
export type ClassificationMode = (typeof CLASSIFICATION_MODES)[number];

/**
 * A classification loss over the training identities, with or instead of the triplet loss, in
 * the same step (its class weights are trainable variables: allreduced, optimised and
 * checkpointed like the network's).
 */
export interface ClassificationOptions {
  /** 'softmax' (normalised softmax) or 'cosface' (additive cosine margin). @default 'cosface' */
  head?: ClassificationHead;
  /**
   * 'beside': loss = triplet + weight x classification at every step; 'alone': classification
   * only; 'warmup': classification alone for `warmupSteps`, then the triplet loss alone. @default 'beside'
   */
  mode?: ClassificationMode;
  /** Weight of the classification term in 'beside' mode. @default 1 */
  weight?: number;
  /** Steps of classification before the triplet loss takes over, in 'warmup' mode. @default half the steps */
  warmupSteps?: number;
  /** Cosine logit scale. @default 30 */
  scale?: number;
  /** CosFace margin (ignored by 'softmax'). @default 0.35 */
  margin?: number;
  /**
   * Number of classes: the training set's identities. Filled in from the data by the coordinator
   * (at POST) and the one-process trainer; a value in a spec is replaced.
   */
  classes?: number;
}

export type ClassificationConfig = Required<ClassificationOptions>;

export function compileClassificationOptions(o: ClassificationOptions | false | undefined, steps: number): ClassificationConfig | false {
  if (!o) return false;
  const c: ClassificationConfig = {
    head: o.head ?? 'cosface',
    mode: o.mode ?? 'beside',
    weight: o.weight ?? 1,
    warmupSteps: o.warmupSteps ?? Math.floor(steps / 2),
    scale: o.scale ?? 30,
    margin: o.margin ?? 0.35,
    classes: o.classes ?? 0,
  };
  if (!CLASSIFICATION_HEADS.includes(c.head))
    throw new ConfigError('classification.head', `unknown '${c.head}', expected ${CLASSIFICATION_HEADS.join(', ')}`);
  if (!CLASSIFICATION_MODES.includes(c.mode))
    throw new ConfigError('classification.mode', `unknown '${c.mode}', expected ${CLASSIFICATION_MODES.join(', ')}`);
  if (!(c.weight > 0 && c.weight <= 100)) throw new ConfigError('classification.weight', `must be in (0, 100], got ${c.weight}`);
  if (!Number.isInteger(c.warmupSteps) || c.warmupSteps < 0 || c.warmupSteps > steps)
    throw new ConfigError('classification.warmupSteps', `must be an integer in [0, steps=${steps}], got ${c.warmupSteps}`);
  if (!(c.scale > 0 && c.scale <= 128)) throw new ConfigError('classification.scale', `must be in (0, 128], got ${c.scale}`);
  if (!(c.margin >= 0 && c.margin < 1)) throw new ConfigError('classification.margin', `must be in [0, 1), got ${c.margin}`);
  if (!Number.isInteger(c.classes) || c.classes < 0)
    throw new ConfigError('classification.classes', `must be a non-negative integer, got ${c.classes}`);
  return c;
}

/** The most class weights a job may train (embeddingDim x classes floats: 256 MB). */
export const MAX_CLASS_WEIGHTS = 64 * 1024 * 1024;

/** The weights of the triplet and classification terms at a step. */
export function lossWeightsAt(c: ClassificationConfig | false, step: number): { triplet: number; classification: number } {
  if (!c) return { triplet: 1, classification: 0 };
  switch (c.mode) {
    case 'beside':
      return { triplet: 1, classification: c.weight };
    case 'alone':
      return { triplet: 0, classification: 1 };
    case 'warmup':
      return step < c.warmupSteps ? { triplet: 0, classification: 1 } : { triplet: 1, classification: 0 };
  }
}

export const CLASS_WEIGHTS = 'classifier/weights';

/**
 * The model a training run optimises: the embedding network, plus the class weights when the
 * objective has a classification term. Inference loads the network alone (restoring ignores the
 * class weights a checkpoint also holds).
 */
export function trainingModel(
  model: ConstructorParameters<typeof EmbeddingModel>[0],
  classification: ClassificationConfig | false,
): EmbeddingModel {
  const m = new EmbeddingModel(model);
  if (classification) {
    if (classification.classes < 2) {
      m.dispose();
      throw new ConfigError(
        'classification.classes',
        `needs at least 2 training identities, got ${classification.classes} (set from the training data)`,
      );
    }
    const d = m.config.embeddingDim;
    m.store.param(CLASS_WEIGHTS, [d, classification.classes], 'glorot', d, classification.classes);
  }
  return m;
}
