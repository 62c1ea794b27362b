import { BatchItem, FaceSource, LoadedImages, loadStepShards, TrainConfig } from '@facenet/core';
import { DatasetSpec, sourceFromSpec } from '@facenet/protocol';

/** The dataset of a step: its spec, and the id of its stored index (absent: the spec alone, synthetic data). */
export interface StepDataset {
  spec: DatasetSpec;
  indexId?: string;
}

/** Loads a step's images: what the step runner needs of the data thread. */
export interface StepLoader {
  load(dataset: StepDataset, shards: BatchItem[][], train: TrainConfig, step: number): Promise<LoadedImages[]>;
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

  /**
   * `packed`: the stored index when the caller holds one this loader has not seen (the data
   * thread gets it once per dataset, not with every step).
   */
  load(dataset: StepDataset, shards: BatchItem[][], train: TrainConfig, step: number, packed?: Uint8Array): Promise<LoadedImages[]> {
    const key = JSON.stringify([dataset.spec, dataset.indexId]);
    if (this.held?.key !== key) {
      if (dataset.indexId && !packed) throw new Error(`dataset index ${dataset.indexId} was not passed to the loader`);
      this.held = { key, source: sourceFromSpec(dataset.spec, packed) };
    }
    return loadStepShards(this.held.source, shards, train, step);
  }

  async interrupt(): Promise<void> {}

  async release(): Promise<void> {
    this.held = undefined;
  }
}
