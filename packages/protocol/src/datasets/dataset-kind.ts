import type { FaceSource } from '@facenet/core';
import type { z } from 'zod';

export interface SpecIssue {
  path: string;
  message: string;
}

/**
 * Everything the services need to know about one kind of dataset. The coordinator, workers,
 * miner and evaluator ask the kind (datasetKind(spec)); none branches on `spec.kind`, so a new
 * kind is one module here plus its line in dataset-kinds.ts.
 */
/** How admission packs an index: its time budget and where progress goes. */
export interface PackOptions {
  /** Refuse (DatasetError) after this long; default: the kind's own. */
  deadlineMs?: number;
  /** Told the images indexed so far, every 65,536. */
  onProgress?: (images: number) => void;
}

export interface DatasetKind<S extends { kind: string }> {
  readonly kind: S['kind'];
  /** The spec's arm of the `dataset` union (zod, defaults filled). */
  readonly schema: z.ZodType<S, unknown>;
  /** Where a spec error about this dataset points (e.g. `dataset.path`). */
  readonly errorPath: string;
  /** Spec fields naming files: refused before anything reads them unless inside the data roots. */
  files(spec: S): { path: string; value: string }[];
  /** Cheap checks at admission beyond the schema (a pairs file's folds, say), on the caller's thread. */
  check?(spec: S): SpecIssue[];
  /**
   * Builds the identity index, packed (see PackedIndexBuilder), once per job at admission, in
   * the admission thread. Absent: the spec alone is the index (synthetic data).
   */
  pack?(spec: S, o?: PackOptions): Promise<Buffer>;
  /** The image source, from the stored packed index when the kind has one. */
  source(spec: S, packed?: Uint8Array): FaceSource;
  /** The centre crop its images are trained with (recorded in checkpoints). */
  cropFraction(spec: S): number;
}
