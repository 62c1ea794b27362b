import { BatchItem, FaceSource, LoadedImages, loadStepShards, TrainConfig } from '@facenet/core';
import { DatasetSpec, sourceFromSpec } from '@facenet/protocol';

/** Loads a step's images: what the step runner needs of the data thread. */
export interface StepLoader {
  load(dataset: DatasetSpec, shards: BatchItem[][], train: TrainConfig, step: number): Promise<LoadedImages[]>;
  /** Stops the loads in flight (they fail with InterruptedError). */
  interrupt(reason: string): Promise<void>;
  /** Drops the source and decoded-image caches of the dataset held (its job ended). */
  release(): Promise<void>;
}

/**
 * Loads on the calling thread, holding one dataset's source at a time (another job's data
 * replaces it, so caches never pile up across jobs). The data thread runs one; unit tests use one
 * directly.
 */
export class InProcessLoader implements StepLoader {
  private held: { key: string; source: FaceSource } | undefined;

  load(dataset: DatasetSpec, shards: BatchItem[][], train: TrainConfig, step: number): Promise<LoadedImages[]> {
    const key = JSON.stringify(dataset);
    if (this.held?.key !== key) this.held = { key, source: sourceFromSpec(dataset) };
    return loadStepShards(this.held.source, shards, train, step);
  }

  async interrupt(): Promise<void> {}

  async release(): Promise<void> {
    this.held = undefined;
  }
}
