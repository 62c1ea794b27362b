/** Errors of the coordinator; `status` is the HTTP status the API answers with. */
export class CoordinatorError extends Error {
  constructor(
    message: string,
    readonly status = 500,
  ) {
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
  constructor(
    readonly jobId: string,
    message: string,
  ) {
    super(`job ${jobId}: ${message}`, 409);
  }
}

/** A checkpoint report that does not exist (no evaluation of that step, no report root, or deleted). */
export class ReportNotFoundError extends CoordinatorError {
  constructor(jobId: string, step: number, why: string) {
    super(`job ${jobId}: no report for step ${step}: ${why}`, 404);
  }
}

/** The final step's weights cannot be made durable: no worker holds them, or the one asked holds another step. */
export class FinalCheckpointError extends CoordinatorError {
  constructor(
    readonly jobId: string,
    readonly step: number,
    why: string,
  ) {
    super(`job ${jobId}: final checkpoint of step ${step}: ${why}`);
  }
}
