/** On the checkpoint queue (`redisKeys().checkpointQueue`): a checkpoint the coordinator registered. */
export interface CheckpointEvent {
  jobId: string;
  step: number;
  dir: string;
}

/** On the abort channel (`redisKeys().abortChannel`): every collective of this job generation must fail. */
export interface AbortMessage {
  jobId: string;
  generation: number;
  /** The job was cancelled: stop its step in flight now (loads and computation), not only its ring. */
  interrupt?: boolean;
}
