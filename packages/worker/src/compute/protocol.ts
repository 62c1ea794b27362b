import type { ModelConfig, OptimizerConfig, Preprocessing, TrainConfig } from '@facenet/core';
import type { HeldState } from '@facenet/protocol';

/** Messages from the worker's main thread to its compute thread; each carries an id for the reply. */
export type ComputeRequest =
  | { id: number; type: 'backend' }
  | { id: number; type: 'init'; jobId: string; step: number; train: TrainConfig; restoreFrom: string | null; preprocessing: Preprocessing }
  | { id: number; type: 'gradients'; shards: { images: Float32Array; labels: Int32Array; count: number }[] }
  | { id: number; type: 'apply'; flat: Float32Array; step: number; learningRateScale: number; checksum: boolean }
  | { id: number; type: 'state'; jobId: string; checkpointDir?: string }
  | { id: number; type: 'memory' }
  | { id: number; type: 'checkpoint'; dir: string };

export interface InitResult {
  /** Steps the loaded weights have applied. */
  step: number;
  /** Where the gradients end and the batch-norm statistics begin in this model's flat vector. */
  bnOffset: number;
}

export type { HeldState, ModelConfig, OptimizerConfig };
