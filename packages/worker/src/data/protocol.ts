import type { BatchItem, LoadedImages, TrainConfig } from '@facenet/core';
import type { StepDataset } from './step-loader';

/** Messages from the worker's main thread to its data thread; each carries an id for the reply. */
export type DataRequest =
  | { id: number; type: 'load'; dataset: StepDataset; shards: BatchItem[][]; train: TrainConfig; step: number; packed?: Uint8Array }
  | { id: number; type: 'release' };

/** The data thread's disk cache since it started (counts) and the fetch times since the last reply. */
export interface CacheReport {
  hits: number;
  misses: number;
  bytesFetched: number;
  fetchSeconds: number[];
}

export interface LoadReply {
  images: LoadedImages[];
  cache: CacheReport;
}
