import { join } from 'node:path';
import { checkpointName } from '@facenet/core';
import { FaultRecord, JobRecord } from '@facenet/protocol';
import { FinalCheckpointError } from './errors';
import { transition } from './job-lifecycle';
import { JobStore } from './job-store';
import { Metrics } from './metrics';
import { queryState } from './state-survey';
import { StepLedger } from './step-ledger';
import { WorkerInboxes } from './worker-inboxes';

export interface DurabilityOptions {
  checkpointDir: (jobId: string) => string;
  stepTimeoutMs: number;
  maxStorageFaults: number;
  log: (line: string) => void;
}

/**
 * "Completed" means the final weights are on disk. A checkpoint the disk refuses is a storage
 * fault: not a fault of the ring (the world stays as it is and the update stands, since every rank
 * applied it), but the job pauses with the path and the reason until an operator frees space and
 * resumes, and fails after maxStorageFaults such faults since its last durable checkpoint.
 */
export class Durability {
  constructor(
    private readonly store: JobStore,
    private readonly inboxes: WorkerInboxes,
    private readonly ledger: StepLedger,
    private readonly metrics: Metrics,
    private readonly o: DurabilityOptions,
  ) {}

  /** Records a storage fault and pauses the job (or fails it after too many). */
  async storageFault(jobId: string, reason: string, errorClass = 'StorageError'): Promise<void> {
    this.metrics.storageFaults.inc({ job_id: jobId });
    const updated = await this.store.update(jobId, (j) => {
      const durable = j.checkpoints[j.checkpoints.length - 1]?.step ?? 0;
      const fault: FaultRecord = {
        at: new Date().toISOString(),
        step: j.step,
        inStep: j.step,
        generation: j.generation,
        kind: 'storage',
        reason,
        errorClass,
        resumedAt: j.step,
        stepsLost: 0,
      };
      j.faults.push(fault);
      const tries = j.faults.filter((f) => f.kind === 'storage' && f.step > durable).length;
      if (tries >= this.o.maxStorageFaults) {
        transition(j, 'fail', `${tries} checkpoints refused by storage since the last durable one (step ${durable}); last: ${reason}`);
      } else if (j.state === 'running' || j.state === 'pending') {
        transition(j, 'pause');
        j.error = `paused after a storage fault: ${reason}. Free space (or fix the volume) and resume; the workers keep the weights of step ${j.step}`;
      }
    });
    this.o.log(
      `[coordinator] job ${jobId}: storage fault at step ${updated.step}: ${reason}; ${updated.state === 'failed' ? `FAILED: ${updated.error}` : 'paused'}`,
    );
  }

  /**
   * True when the job's last checkpoint holds its final step. Otherwise (the final checkpoint was
   * refused and the job resumed) a holder of the weights writes it now; on a storage error the
   * job pauses again, and false is returned.
   */
  async finalStateDurable(job: JobRecord): Promise<boolean> {
    if (job.checkpoints[job.checkpoints.length - 1]?.step === job.step) return true;
    const holder = job.stateHolders?.[0] ?? job.world[0]?.workerId;
    if (!holder) throw new FinalCheckpointError(job.id, job.step, 'no worker holds its weights to write them');
    const dir = join(this.o.checkpointDir(job.id), checkpointName(job.step));
    let held;
    try {
      held = await queryState(this.inboxes, job, holder, this.o.stepTimeoutMs, dir);
    } catch (err) {
      const e = err as Error; // decoded from the worker's failure: the class survives by name
      if (e.name !== 'StorageError') throw err;
      await this.storageFault(job.id, `final checkpoint ${dir}: ${e.message}`);
      return false;
    }
    if (!held?.checkpoint || held.step !== job.step) {
      throw new FinalCheckpointError(job.id, job.step, `${holder} holds ${held ? `step ${held.step}` : 'nothing'}, not the final step`);
    }
    await this.store.update(job.id, (j) => {
      j.checkpoints.push({ step: job.step, dir, createdAt: new Date().toISOString() });
      j.restoreFrom = dir;
    });
    await this.ledger.announceCheckpoint(job.id, job.step, dir);
    this.o.log(`[coordinator] job ${job.id}: final checkpoint written by ${holder} to ${dir}`);
    return true;
  }
}
