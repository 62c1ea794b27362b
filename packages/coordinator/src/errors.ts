/** Errors of the coordinator; `status` is the HTTP status the API answers with. */
export class CoordinatorError extends Error {
  constructor(message: string, readonly status = 500) {
    super(message);
    this.name = new.target.name;
  }
}

export class JobNotFoundError extends CoordinatorError {
  constructor(readonly jobId: string) {
    super(`no job '${jobId}'`, 404);
  }
}

/** A request that does not fit the job's state (e.g. resuming a completed job). */
export class JobStateError extends CoordinatorError {
  constructor(readonly jobId: string, message: string) {
    super(`job ${jobId}: ${message}`, 409);
  }
}
