import type { BatchItem, TrainConfig } from '@facenet/core';
import type { DatasetSpec } from '@facenet/protocol';

/** Messages from the worker's main thread to its data thread; each carries an id for the reply. */
export type DataRequest =
  | { id: number; type: 'load'; dataset: DatasetSpec; shards: BatchItem[][]; train: TrainConfig; step: number }
  | { id: number; type: 'release' };
