import { registerErrorClasses } from './error-envelope';

/**
 * Errors of the core library, each class with the fields a caller needs to act on it, and
 * whether retrying the same operation can help (bad input and full disks cannot).
 */
export class FacenetError extends Error {
  readonly retryable: boolean = false;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class BackendError extends FacenetError {}

/** An image that cannot be read or decoded. Carries the path so reports can name it. */
export class ImageDecodeError extends FacenetError {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`cannot decode ${path}: ${reason}`);
  }
}

export class DatasetError extends FacenetError {}

/** A malformed pairs file; `line` is 1-based. */
export class PairsFormatError extends FacenetError {
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
  }
}

export class CheckpointError extends FacenetError {
  constructor(
    readonly dir: string,
    reason: string,
  ) {
    super(`checkpoint ${dir}: ${reason}`);
  }
}

/** A bad option value; `field` names it (e.g. 'train.batch.P'). */
export class ConfigError extends FacenetError {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

export class DownloadError extends FacenetError {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`download ${url}: ${reason}`);
  }
}

/** A model whose variables do not fit its graph (e.g. weights of another architecture). */
export class ModelError extends FacenetError {
  constructor(
    readonly parameter: string,
    reason: string,
  ) {
    super(`parameter ${parameter}: ${reason}`);
  }
}

/** A job spec that fails validation; one entry per bad field, each with its path. */
export class SpecError extends FacenetError {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid spec: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  }
}

/**
 * A step whose loss, gradients or updated weights hold NaN or Inf. Nothing of it was applied:
 * the weights are those before the step.
 */
export class NonFiniteError extends FacenetError {
  constructor(
    readonly step: number,
    readonly what: 'loss' | 'gradients' | 'batch-norm statistics' | 'weights',
    readonly detail: string,
  ) {
    super(`non-finite ${what} at step ${step + 1}: ${detail}`);
  }
}

/**
 * Storage refused a write (a full disk, a read-only or vanished volume), or what was written did
 * not read back the same. `code` is the system's (ENOSPC, EROFS, EIO, ...) or EVERIFY.
 */
export class StorageError extends FacenetError {
  constructor(
    readonly path: string,
    readonly code: string,
    readonly reason: string,
  ) {
    super(`cannot write ${path}: ${reason}`);
  }
}

/** An inference engine that cannot load a model or run a batch (the caller may fall back to TensorFlow.js). */
export class InferenceError extends FacenetError {}

registerErrorClasses(
  FacenetError,
  BackendError,
  ImageDecodeError,
  DatasetError,
  PairsFormatError,
  CheckpointError,
  ConfigError,
  DownloadError,
  ModelError,
  SpecError,
  NonFiniteError,
  StorageError,
  InferenceError,
);
