import { FacenetError } from '@facenet/core';

/** A job whose checkpoints cannot be evaluated (no pairs to score); the job itself trains on. */
export class EvaluationSetError extends FacenetError {
  constructor(message: string) {
    super(message);
  }
}
