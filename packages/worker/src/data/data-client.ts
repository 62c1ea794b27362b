import { join } from 'node:path';
import type { BatchItem, LoadedImages, TrainConfig } from '@facenet/core';
import { ThreadClient } from '../threads/thread-client';
import type { StepDataset, StepLoader } from './step-loader';
import type { CacheReport, LoadReply } from './protocol';

/**
 * The main thread's handle on the data thread (data-thread.ts). A dataset's packed index is read
 * from Redis here (I/O only) and moved to the thread with the first step that needs it.
 */
export class DataClient implements StepLoader {
  private readonly thread = new ThreadClient(join(__dirname, 'data-thread.js'), 'data');
  /** The dataset (spec and index) whose source the thread holds (a fresh thread after an interrupt holds none). */
  private threadDataset: string | undefined;

  /** The cache counts last reported by the current thread (a fresh thread starts from zero). */
  private reported = { hits: 0, misses: 0, bytesFetched: 0 };

  constructor(
    private readonly fetchIndex: (id: string) => Promise<Uint8Array>,
    private readonly onCache: (delta: CacheReport) => void = () => undefined,
  ) {}

  async load(dataset: StepDataset, shards: BatchItem[][], train: TrainConfig, step: number): Promise<LoadedImages[]> {
    // Keyed like the thread's source: two locations of the same files share an index id, not a source.
    const held = JSON.stringify([dataset.spec, dataset.indexId]);
    const packed = dataset.indexId && held !== this.threadDataset ? await this.fetchIndex(dataset.indexId) : undefined;
    this.threadDataset = held;
    let r: LoadReply;
    try {
      r = await this.thread.call<LoadReply>('load', { dataset, shards, train, step, packed }, packed ? [packed.buffer as ArrayBuffer] : []);
    } catch (err) {
      if (packed) this.threadDataset = undefined; // the thread may not have kept the source: send the index again
      throw err;
    }
    const last = this.reported;
    this.onCache({
      hits: r.cache.hits - last.hits,
      misses: r.cache.misses - last.misses,
      bytesFetched: r.cache.bytesFetched - last.bytesFetched,
      fetchSeconds: r.cache.fetchSeconds,
    });
    this.reported = { hits: r.cache.hits, misses: r.cache.misses, bytesFetched: r.cache.bytesFetched };
    return r.images;
  }

  interrupt(reason: string): Promise<void> {
    this.threadDataset = undefined;
    this.reported = { hits: 0, misses: 0, bytesFetched: 0 }; // the next thread counts from zero
    return this.thread.interrupt(reason);
  }

  async release(): Promise<void> {
    this.threadDataset = undefined;
    await this.thread.call('release', {});
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}
