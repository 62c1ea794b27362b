import type { JobRecord } from '@facenet/protocol';
import { transition } from './job-lifecycle';
import { JobStore } from './job-store';
import { Metrics } from './metrics';

/**
 * Every rank rejected the step (NaN or Inf in its loss, gradients or new weights) and applied
 * nothing: retry it from the weights they hold with a lower learning rate, or fail the job
 * after `maxRollbacks` such rollbacks.
 */
export async function rollBackNonFinite(
  store: JobStore,
  metrics: Metrics,
  log: (line: string) => void,
  job: JobRecord,
  detail: string,
): Promise<void> {
  const g = job.spec.nonFinite;
  metrics.faults.inc({ job_id: job.id });
  const updated = await store.update(job.id, (j) => {
    // Counts rollbacks done, so the failing event after the last allowed one is not counted as one.
    const done = j.nonFiniteRollbacks ?? 0;
    const giveUp = done >= g.maxRollbacks;
    j.faults.push({
      at: new Date().toISOString(),
      step: j.step,
      inStep: j.step + 1,
      generation: j.generation,
      kind: 'non-finite',
      reason: detail,
      resumedAt: j.step,
      stepsLost: 0,
      recovery: giveUp ? undefined : 'rollback',
    });
    if (giveUp) {
      transition(
        j,
        'fail',
        `${detail}; gave up after ${g.maxRollbacks} rollback(s) with the learning rate lowered to ${(j.learningRateScale ?? 1).toExponential(1)} x the schedule (nonFinite.maxRollbacks). The weights every rank holds are those after step ${j.step}: resume from an earlier checkpoint with a lower learning rate`,
      );
      return;
    }
    j.nonFiniteRollbacks = done + 1;
    j.learningRateScale = (j.learningRateScale ?? 1) * g.learningRateFactor;
    j.generation++; // new shard job and collective ids for the retried step
    j.stateHolders = j.world.map((w) => w.workerId); // nothing was applied: every rank still holds step j.step
  });
  if (updated.state !== 'failed') metrics.nonFinite.inc({ job_id: job.id }); // rollbacks done, as the record counts them
  metrics.learningRateScale.set({ job_id: job.id }, updated.learningRateScale ?? 1);
  log(
    `[coordinator] job ${job.id}: ${detail}; ${updated.state === 'failed' ? `FAILED: ${updated.error}` : `rolled back (${updated.nonFiniteRollbacks}/${job.spec.nonFinite.maxRollbacks}), retrying step ${updated.step + 1} with the learning rate x ${(updated.learningRateScale ?? 1).toExponential(1)}`}`,
  );
}
