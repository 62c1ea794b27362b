import { ConfigError } from '../errors';
import { AugmentOptions } from '../data/augment';
import { compilePKOptions, PKOptions, PKConfig } from '../data/pk-sampler';
import { SELECTION_STRATEGIES, SelectionStrategy } from '../loss/triplet-selection';
import { compileModelOptions, ModelConfig, ModelOptions } from '../model/embedding-model';
import { compileOptimizerOptions, OptimizerConfig, OptimizerOptions } from '../optim/optimizer';
import { compileScheduleOptions, ScheduleConfig, ScheduleOptions } from '../optim/schedule';
import { ClassificationConfig, ClassificationOptions, compileClassificationOptions } from './objective';

export interface TrainOptions {
  model?: ModelOptions;
  optimizer?: OptimizerOptions;
  schedule?: ScheduleOptions;
  batch?: PKOptions;
  /** Identity-balanced virtual shards per batch; gradients are their mean. @default 1 */
  virtualShards?: number;
  /** Online triplet selection inside each virtual shard (the miner service is separate). @default 'semi-hard' (the paper's) */
  selection?: SelectionStrategy;
  /** Triplet margin alpha. @default 0.2 (the paper's) */
  margin?: number;
  /** A classification loss over the training identities (alone, as a warm-up or beside the triplet loss); false = triplet only. @default false */
  classification?: ClassificationOptions | false;
  /** Total steps. @default 1000 */
  steps?: number;
  /** Seeds batches and augmentation. @default 1 */
  seed?: number;
  /** Training augmentation, or false for none. @default { cropMargin: 0.125, flip: true } */
  augment?: AugmentOptions | false;
  /** Batch-norm moving-average momentum. @default 0.9 */
  bnMomentum?: number;
  /** Folder for checkpoints (step-NNNNNN subfolders); none when unset. */
  checkpointDir?: string;
  /** Checkpoint every N steps (and at the end); 0 = at the end only. @default 0 */
  checkpointEvery?: number;
  /** Evaluate on the held-out pairs every N steps (and at the end); 0 = at the end only. @default 0 */
  evaluateEvery?: number;
}

export interface TrainConfig {
  model: ModelConfig;
  optimizer: OptimizerConfig;
  schedule: ScheduleConfig;
  batch: PKConfig;
  virtualShards: number;
  selection: SelectionStrategy;
  margin: number;
  classification: ClassificationConfig | false;
  steps: number;
  seed: number;
  augment: Required<AugmentOptions> | false;
  bnMomentum: number;
  checkpointDir: string | undefined;
  checkpointEvery: number;
  evaluateEvery: number;
}

/** The most steps a job may ask for (and the largest checkpoint or evaluation period). */
export const MAX_STEPS = 10_000_000;

const nonNegInt = (field: string, v: number) => {
  if (!Number.isInteger(v) || v < 0 || v > MAX_STEPS) throw new ConfigError(field, `must be an integer in [0, ${MAX_STEPS}], got ${v}`);
  return v;
};

/** Fills defaults and rejects bad values up front, naming the field. */
export function compileTrainOptions(o: TrainOptions = {}): TrainConfig {
  const steps = o.steps ?? 1000;
  if (!Number.isInteger(steps) || steps < 1 || steps > MAX_STEPS)
    throw new ConfigError('steps', `must be an integer in [1, ${MAX_STEPS}], got ${steps}`);
  const selection = o.selection ?? 'semi-hard';
  if (!SELECTION_STRATEGIES.includes(selection))
    throw new ConfigError('selection', `unknown '${selection}', expected ${SELECTION_STRATEGIES.join(', ')}`);
  const margin = o.margin ?? 0.2;
  if (!(margin > 0 && margin < 4)) throw new ConfigError('margin', `must be in (0, 4), got ${margin}`);
  const batch = compilePKOptions(o.batch);
  const virtualShards = o.virtualShards ?? 1;
  if (!Number.isInteger(virtualShards) || virtualShards < 1 || virtualShards > batch.P) {
    throw new ConfigError('virtualShards', `must be an integer in [1, P=${batch.P}], got ${virtualShards}`);
  }
  const classification = compileClassificationOptions(o.classification, steps);
  // Identities are dealt to virtual shards whole, and triplets form within a shard: a shard with
  // one identity has no negative, so a job with P < 2V would train nothing in some shards.
  if (batch.P < 2 * virtualShards && !(classification && classification.mode === 'alone')) {
    throw new ConfigError(
      'virtualShards',
      `${virtualShards} virtual shards need P >= ${2 * virtualShards} identities a batch (two per shard, or no triplet can form in it), got batch.P = ${batch.P}`,
    );
  }
  const bnMomentum = o.bnMomentum ?? 0.9;
  if (!(bnMomentum >= 0 && bnMomentum < 1)) throw new ConfigError('bnMomentum', `must be in [0, 1), got ${bnMomentum}`);
  const augment = o.augment === false ? false : { cropMargin: o.augment?.cropMargin ?? 0.125, flip: o.augment?.flip ?? true };
  if (augment && !(augment.cropMargin >= 0 && augment.cropMargin <= 1))
    throw new ConfigError('augment.cropMargin', `must be in [0, 1], got ${augment.cropMargin}`);
  return {
    model: compileModelOptions(o.model),
    optimizer: compileOptimizerOptions(o.optimizer),
    schedule: compileScheduleOptions(o.schedule, steps),
    batch,
    virtualShards,
    selection,
    margin,
    steps,
    classification,
    seed: o.seed ?? 1,
    augment,
    bnMomentum,
    checkpointDir: o.checkpointDir,
    checkpointEvery: nonNegInt('checkpointEvery', o.checkpointEvery ?? 0),
    evaluateEvery: nonNegInt('evaluateEvery', o.evaluateEvery ?? 0),
  };
}
