import IORedis from 'ioredis';
import { join } from 'node:path';
import { checkpointName } from '@facenet/core';
import { FaultKind, FaultRecord, JobRecord, redisKeys, ShardJobResult } from '@facenet/protocol';
import { transition } from './job-lifecycle';
import { JobStore } from './job-store';
import { PlannedStep, StepLedger } from './step-ledger';
import { queryState, surveyState, VerifiedState } from './state-survey';
import { membersOf, WorldChange } from './world-change';
import { WorkerInboxes } from './worker-inboxes';

/** What reshape needs to know of a fault. */
export interface FaultInfo {
  kind: FaultKind;
  reason: string;
  done?: ShardJobResult[];
  step?: PlannedStep;
  stepMs?: number;
  errorClass?: string;
}

export interface ReshaperOptions {
  prefix: string;
  checkpointDir: (jobId: string) => string;
  stepTimeoutMs: number;
  stateQueryTimeoutMs: number;
  maxFaultsPerStep: number;
  log: (line: string) => void;
  /** True once the coordinator stops driving: waits end early and nothing more is recorded. */
  stopping: () => boolean;
}

/**
 * Moves a job to a new world generation (after a fault, a drain, a join, or when it starts) and
 * decides where its weights come from: the members holding a verified state keep it; members
 * lacking it load it from a checkpoint that one holder writes (unless one exists at that step);
 * only if no member holds a verified state, the last checkpoint.
 */
export class WorldReshaper {
  private readonly keys: ReturnType<typeof redisKeys>;

  constructor(
    private readonly redis: IORedis,
    private readonly store: JobStore,
    private readonly inboxes: WorkerInboxes,
    private readonly ledger: StepLedger,
    private readonly o: ReshaperOptions,
  ) {
    this.keys = redisKeys(o.prefix);
  }

  /** Lets a draining worker leave (it is in no running job's world). */
  async release(workerId: string): Promise<void> {
    await this.redis.set(this.keys.workerReleased(workerId), '1', 'PX', 120_000);
  }

  /**
   * Moves the job to a new generation with the changed world. The weights come from the members
   * that hold a verified state (they keep it; others load it from a checkpoint that one of them
   * writes, unless one exists at that step); only if none does, from the last checkpoint.
   */
  async reshape(job: JobRecord, c: WorldChange, why: string, f?: FaultInfo): Promise<void> {
    const world = [...c.survivors, ...c.joiners];
    const minWorld = job.spec.minWorldSize ?? 1;
    const sources = [...c.survivors, ...c.leaving].map((w) => w.id).filter((id) => !c.lost.includes(id));
    const survey: Awaited<ReturnType<typeof surveyState>> = sources.length
      ? await surveyState(this.inboxes, job, sources, this.o.stateQueryTimeoutMs)
      : { answers: [] };
    let state: VerifiedState | undefined = survey.state;
    const committed = job.step;
    const inflight = f?.done?.filter((r) => r.step === committed && !r.nonFinite) ?? [];
    // Holders one step ahead applied the step in flight. Their state is used only with a result of
    // it to record and two workers vouching for the same weights (two holders, or a holder and a
    // rank whose reported checksum matches); one unchecked copy is not trusted, and the job then
    // replays from the last checkpoint.
    if (state && state.step === committed + 1) {
      const vouching = new Set(state.holders);
      for (const r of inflight) if (r.checksum === state.checksum) vouching.add(job.world[r.rank]?.workerId ?? `rank ${r.rank}`);
      if (inflight.length === 0 || vouching.size < 2) {
        this.o.log(
          `[coordinator] job ${job.id}: step ${committed + 1} is held by ${state.holders.join(', ')} alone, with no second copy to check it against; replaying it from ${survey.atCommitted ? `the state of step ${committed} held by ${survey.atCommitted.holders.join(', ')}` : 'the last checkpoint'}`,
        );
        state = survey.atCommitted;
      }
    }
    let restoreFrom = job.restoreFrom;
    let written: { step: number; dir: string } | undefined;
    if (state && state.step > 0) {
      const needers = world.filter((w) => !state!.holders.includes(w.id));
      if (needers.length > 0 || world.length < minWorld) {
        const existing = job.checkpoints.find((x) => x.step === state!.step);
        if (existing) restoreFrom = existing.dir;
        else {
          const dir = join(this.o.checkpointDir(job.id), checkpointName(state.step));
          const h = await queryState(this.inboxes, job, state.holders[0] as string, this.o.stepTimeoutMs, dir).catch((err: Error) => err);
          if (!(h instanceof Error) && h?.checkpoint && h.checksum === state.checksum) {
            restoreFrom = dir;
            written = { step: state.step, dir };
          } else {
            const answer =
              h instanceof Error ? h.message : h ? `step ${h.step} ${h.checksum.slice(0, 12)}, no checkpoint` : 'holds nothing';
            this.o.log(
              `[coordinator] job ${job.id}: cannot write the survivors' state as a checkpoint (${state.holders[0]}: ${answer}); falling back to the last checkpoint`,
            );
            state = undefined;
          }
        }
      }
    }
    if (this.o.stopping()) {
      // The survey was cut short by the coordinator stopping, not by the workers: record nothing,
      // the next coordinator reshapes from the job as it stands.
      this.o.log(`[coordinator] job ${job.id}: stopping; ${why} left to the next coordinator`);
      return;
    }
    const last = job.checkpoints[job.checkpoints.length - 1];
    const step = state ? state.step : (last?.step ?? 0);
    if (!state) restoreFrom = last?.dir ?? null;
    if (state && step === committed + 1) {
      // Every rank applied the step in flight before one died: commit it from the results in hand.
      await this.ledger.commit(job, inflight, f?.stepMs ?? 0, f?.step ?? {}, { recovered: true });
    }
    let before = 0;
    const updated = await this.store.update(job.id, (j) => {
      before = j.step;
      j.generation++;
      const finalStep = state ? step : (last?.step ?? 0);
      if (written) {
        j.checkpoints.push({ step: written.step, dir: written.dir, createdAt: new Date().toISOString() });
      }
      if (f) {
        const fault: FaultRecord = {
          at: new Date().toISOString(),
          step: committed,
          inStep: committed + 1,
          generation: job.generation,
          kind: f.kind,
          reason: f.reason,
          errorClass: f.errorClass,
          resumedAt: finalStep,
          stepsLost: Math.max(0, committed - finalStep),
          recovery: state ? 'survivors' : 'checkpoint',
        };
        j.faults.push(fault);
      }
      j.step = finalStep;
      j.restoreFrom = state ? restoreFrom : (last?.dir ?? null);
      j.stateHolders = state ? state.holders.filter((id) => world.some((w) => w.id === id)) : [];
      const atThisStep = j.faults.filter((x) => x.step === committed && x.kind !== 'non-finite').length;
      if (f && atThisStep > this.o.maxFaultsPerStep) {
        transition(j, 'fail', `step ${committed + 1} failed ${atThisStep} times; last: ${f.reason}`);
      } else if (world.length >= minWorld && world.length > 0) {
        if (j.state === 'pending') transition(j, 'start');
        j.world = membersOf(world);
      } else if (j.state === 'running') {
        transition(j, 'wait');
      }
    });
    if (updated.step < before) await this.store.markRolledBack(job.id, updated.step);
    // A drained member may now exit; a preempted one stays, idle, for the job that took it.
    for (const w of c.leaving) if (w.draining) await this.release(w.id);
    for (const id of c.lost) await this.inboxes.forget(id);
    if (written) await this.ledger.announceCheckpoint(job.id, written.step, written.dir);
    const from = state
      ? `verified state held by workers at step ${updated.step} (${state.holders.length} holder(s)${written ? `, written to ${written.dir} for the others` : ''})`
      : `checkpoint at step ${updated.step}`;
    this.o.log(
      `[coordinator] job ${job.id}: ${why}; generation ${updated.generation}, ${updated.state === 'running' ? `continuing on ${updated.world.length} worker(s) from the ${from}` : updated.state === 'failed' ? `FAILED: ${updated.error}` : `pending (fewer than minWorldSize ${minWorld} workers), from the ${from}`}`,
    );
    if (survey.answers.length) this.o.log(`[coordinator] job ${job.id}: state survey: ${survey.answers.join('; ')}`);
  }
}
