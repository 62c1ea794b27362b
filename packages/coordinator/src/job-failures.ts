import type { JobRecord } from '@facenet/protocol';
import { transition } from './job-lifecycle';
import { JobStore } from './job-store';

/**
 * A worker refused the job itself as invalid (paths outside its roots, a malformed payload): every
 * re-plan would be refused alike, so the job fails now, saying why, with the refusal as a fault.
 */
export async function failRejectedJob(
  store: JobStore,
  log: (line: string) => void,
  job: JobRecord,
  message: string,
  errorClass: string | undefined,
): Promise<void> {
  const reason = `a worker refused the job: ${message}`;
  await store.update(job.id, (j) => {
    j.faults.push({
      at: new Date().toISOString(),
      step: j.step,
      inStep: j.step + 1,
      generation: j.generation,
      kind: 'rejected',
      reason,
      errorClass,
    });
    transition(j, 'fail', reason);
  });
  log(`[coordinator] job ${job.id}: FAILED: ${reason}`);
}

/**
 * Fails the job when maxStepsWithoutTriplets committed steps in a row formed no triplet while the
 * triplet loss was on (the ledger counts them): it is training nothing, and would otherwise end "completed".
 */
export async function failIfLearningNothing(store: JobStore, log: (line: string) => void, job: JobRecord): Promise<boolean> {
  const n = job.spec.maxStepsWithoutTriplets ?? 20; // specs stored before the option have none
  if (n === 0 || (job.stepsWithoutTriplets ?? 0) < n) return false;
  const id = job.id;
  const reason = `no triplet formed in the last ${n} steps (maxStepsWithoutTriplets): every virtual shard needs two identities with two decodable images; check the dataset (the workers log the images they skip as undecodable), train.batch.P and train.virtualShards`;
  await store.update(id, (j) => transition(j, 'fail', reason));
  log(`[coordinator] job ${id}: FAILED: ${reason}`);
  return true;
}
