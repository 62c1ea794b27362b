import { registerErrorClasses } from '@facenet/core';

/** Errors of the worker, each with the fields (job, step, rank) that say where it happened. */
export class WorkerError extends Error {
  /** Whether another try (a new generation of the ring) can help. */
  readonly retryable: boolean = false;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A collective that could not complete: the step is aborted on this rank, nothing applied; a new ring may succeed. */
export class AllreduceError extends WorkerError {
  override readonly retryable = true;
  constructor(
    readonly collectiveId: string,
    readonly rank: number,
    readonly reason: string,
  ) {
    super(`allreduce ${collectiveId} (rank ${rank}): ${reason}`);
  }
}

/** A peer's byte stream that breaks the ring's framing (a bad header, a length out of bounds). */
export class MalformedStreamError extends WorkerError {
  override readonly retryable = true;
}

/**
 * This rank's weights cannot continue the step it was given (wrong step, no checkpoint): the
 * shard job is answered as failed (never re-run); the coordinator re-plans.
 */
export class StateError extends WorkerError {
  constructor(
    readonly jobId: string,
    readonly step: number,
    readonly reason: string,
  ) {
    super(`job ${jobId} at step ${step}: ${reason}`);
  }
}

/** The compute thread crashed or exited; every request in flight fails with this. */
export class ComputeThreadError extends WorkerError {
  override readonly retryable = true;
}

/** A step stopped in flight because its job was cancelled: nothing of it was applied. */
export class InterruptedError extends WorkerError {}

registerErrorClasses(WorkerError, AllreduceError, StateError, ComputeThreadError, InterruptedError);
