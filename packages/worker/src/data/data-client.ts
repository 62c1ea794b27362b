import { join } from 'node:path';
import type { BatchItem, LoadedImages, TrainConfig } from '@facenet/core';
import type { DatasetSpec } from '@facenet/protocol';
import { ThreadClient } from '../threads/thread-client';
import type { StepLoader } from './step-loader';

/** The main thread's handle on the data thread (data-thread.ts). */
export class DataClient implements StepLoader {
  private readonly thread = new ThreadClient(join(__dirname, 'data-thread.js'), 'data');

  load(dataset: DatasetSpec, shards: BatchItem[][], train: TrainConfig, step: number): Promise<LoadedImages[]> {
    return this.thread.call('load', { dataset, shards, train, step });
  }

  interrupt(reason: string): Promise<void> {
    return this.thread.interrupt(reason);
  }

  async release(): Promise<void> {
    await this.thread.call('release', {});
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}
