import { join } from 'node:path';
import type { BatchItem, LoadedImages, TrainConfig } from '@facenet/core';
import { ThreadClient } from '../threads/thread-client';
import type { StepDataset, StepLoader } from './step-loader';

/**
 * The main thread's handle on the data thread (data-thread.ts). A dataset's packed index is read
 * from Redis here (I/O only) and moved to the thread with the first step that needs it.
 */
export class DataClient implements StepLoader {
  private readonly thread = new ThreadClient(join(__dirname, 'data-thread.js'), 'data');
  /** The index the thread holds (a fresh thread after an interrupt holds none). */
  private threadIndex: string | undefined;

  constructor(private readonly fetchIndex: (id: string) => Promise<Uint8Array>) {}

  async load(dataset: StepDataset, shards: BatchItem[][], train: TrainConfig, step: number): Promise<LoadedImages[]> {
    const id = dataset.indexId;
    const packed = id && id !== this.threadIndex ? await this.fetchIndex(id) : undefined;
    if (packed) this.threadIndex = id;
    return this.thread.call('load', { dataset, shards, train, step, packed }, packed ? [packed.buffer as ArrayBuffer] : []);
  }

  interrupt(reason: string): Promise<void> {
    this.threadIndex = undefined;
    return this.thread.interrupt(reason);
  }

  async release(): Promise<void> {
    this.threadIndex = undefined;
    await this.thread.call('release', {});
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}
