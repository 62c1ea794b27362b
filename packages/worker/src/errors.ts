/** Errors of the worker. `retryable: false` marks errors a queue must not retry. */
export class WorkerError extends Error {
  readonly retryable: boolean = true;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A collective that could not complete: the step is aborted on this rank, nothing applied. */
export class AllreduceError extends WorkerError {
  constructor(readonly collectiveId: string, readonly rank: number, reason: string) {
    super(`allreduce ${collectiveId} (rank ${rank}): ${reason}`);
  }
}

/** This rank's weights cannot continue the step it was given (wrong step, no checkpoint). */
export class StateError extends WorkerError {
  override readonly retryable = false;
}
