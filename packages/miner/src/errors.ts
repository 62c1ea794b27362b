/** Errors of the miner, with the job and checkpoint they concern. */
export class MinerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A checkpoint that could not be mined (unreadable, or its job's data is gone); the event fails, training goes on. */
export class MiningError extends MinerError {
  constructor(
    readonly jobId: string,
    readonly step: number,
    readonly dir: string,
    readonly reason: string,
  ) {
    super(`job ${jobId}: cannot mine checkpoint ${step} (${dir}): ${reason}`);
  }
}
