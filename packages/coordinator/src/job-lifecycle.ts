import type { JobRecord, JobState } from '@facenet/protocol';
import { JobStateError } from './errors';

/**
 * Every change of a job's state, in one table: the REST routes and the job driver move jobs only
 * through `transition`, so a state change the table does not allow is an error, never a silent
 * overwrite. Faults, rewinds and world changes keep a job `running` (or send it to `pending`
 * when too few workers are left); they are not states of their own.
 */
export type JobEvent = 'admit' | 'start' | 'wait' | 'pause' | 'resume' | 'cancel' | 'complete' | 'fail';

export const TRANSITIONS: Readonly<Record<JobEvent, { from: readonly JobState[]; to: JobState; what: string }>> = {
  /** Its dataset indexed after POST answered 202: it joins the line. */
  admit: { from: ['admitting'], to: 'pending', what: 'admit' },
  /** Enough idle workers: the driver gives the job a world. */
  start: { from: ['pending'], to: 'running', what: 'start' },
  /** Fewer workers than minWorldSize after a fault or drain: the job waits for more. */
  wait: { from: ['running'], to: 'pending', what: 'wait for workers' },
  /** A pending job pauses at once; a running one at its next step boundary (the driver applies it). */
  pause: { from: ['pending', 'running'], to: 'paused', what: 'pause' },
  /** Paused, or finished and rewound to a checkpoint (the route checks the rewind). */
  resume: { from: ['paused', 'failed', 'completed', 'cancelled'], to: 'pending', what: 'resume' },
  cancel: { from: ['admitting', 'pending', 'paused', 'running'], to: 'cancelled', what: 'cancel' },
  complete: { from: ['running'], to: 'completed', what: 'complete' },
  /** Repeated faults, non-finite rollbacks exhausted, diverged checksums; a dataset admission refused. */
  fail: { from: ['admitting', 'pending', 'running'], to: 'failed', what: 'fail' },
};

export function canTransition(state: JobState, event: JobEvent): boolean {
  return TRANSITIONS[event].from.includes(state);
}

/** Moves `job` by `event` (in place, inside a store update); JobStateError if the table forbids it. */
export function transition(job: JobRecord, event: JobEvent, error?: string): JobRecord {
  const t = TRANSITIONS[event];
  if (!t.from.includes(job.state)) throw new JobStateError(job.id, `cannot ${t.what} a ${job.state} job`);
  job.state = t.to;
  if (event === 'fail') job.error = error;
  if (event === 'resume') job.error = undefined;
  if (event === 'admit' || event === 'fail' || event === 'cancel') job.admission = undefined;
  // A job that waits or failed holds no workers; a finished or paused one keeps its last world
  // for the record (only running jobs count as busy).
  if (event === 'wait' || event === 'fail') job.world = [];
  return job;
}
