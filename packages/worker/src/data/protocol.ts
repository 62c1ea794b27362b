import type { BatchItem, TrainConfig } from '@facenet/core';
import type { StepDataset } from './step-loader';

/** Messages from the worker's main thread to its data thread; each carries an id for the reply. */
export type DataRequest =
  | { id: number; type: 'load'; dataset: StepDataset; shards: BatchItem[][]; train: TrainConfig; step: number; packed?: Uint8Array }
  | { id: number; type: 'release' };
