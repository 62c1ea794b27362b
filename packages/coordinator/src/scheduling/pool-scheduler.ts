import type { JobRecord, WorkerInfo } from '@facenet/protocol';
import { budgetShortfall, MAX_PREEMPTION_RECORDS } from '@facenet/protocol';
import { JobStore } from '../job-store';
import { Metrics } from '../metrics';
import { planAllowances, SchedJob, Schedule } from './plan-allowances';
import { QueueConfig } from './queues';

/** Fewest ranks a job starts on: minWorldSize, else (new) its full world, else (it ran before) one. */
export function minRanksOf(job: JobRecord): number {
  return job.spec.minWorldSize ?? (job.generation === 0 ? job.spec.worldSize : 1);
}

/** The scheduler's view of a job: a few numbers. */
function schedJob(job: JobRecord, order: number): SchedJob {
  return {
    id: job.id,
    queue: job.spec.queue,
    priority: job.spec.priority,
    order: Date.parse(job.createdAt) * 1000 + order,
    worldSize: job.spec.worldSize,
    minRanks: minRanksOf(job),
    holds: job.state === 'running' ? job.world.length : 0,
    backfilledFor: job.backfilledFor,
  };
}

/** A queue as GET /v1/queues shows it. */
export interface QueueView {
  name: string;
  nominalRanks: number;
  weight: number;
  runningRanks: number;
  runningJobs: number;
  pendingJobs: number;
  /** Ranks held beyond the nominal share (lent by queues that were not using theirs). */
  borrowedRanks: number;
  /** Fraction of the pool's ranks (held + idle) the queue holds. */
  share: number;
}

export function queueViews(queues: readonly QueueConfig[], jobs: readonly JobRecord[], idleRanks: number): QueueView[] {
  const byName = new Map(queues.map((q) => [q.name, { ...q, runningRanks: 0, runningJobs: 0, pendingJobs: 0 }]));
  for (const j of jobs) {
    let v = byName.get(j.spec.queue);
    if (!v)
      byName.set(j.spec.queue, (v = { name: j.spec.queue, nominalRanks: 0, weight: 1, runningRanks: 0, runningJobs: 0, pendingJobs: 0 }));
    if (j.state === 'running') {
      v.runningRanks += j.world.length;
      v.runningJobs++;
    } else if (j.state === 'pending') v.pendingJobs++;
  }
  const pool = idleRanks + [...byName.values()].reduce((n, v) => n + v.runningRanks, 0);
  return [...byName.values()].map((v) => ({
    ...v,
    borrowedRanks: Math.max(0, v.runningRanks - v.nominalRanks),
    share: pool ? v.runningRanks / pool : 0,
  }));
}

/**
 * The pool's scheduler as the job driver runs it each tick: the decision (planAllowances) over the
 * active jobs, kept for the job loops (each reads its allowance at its step boundary) and for
 * GET /v1/queues, and every new preemption recorded on its victim and counted.
 */
export class PoolScheduler {
  last: Schedule | undefined;
  /** Each queue as of the last decision (GET /v1/queues). */
  views: QueueView[] = [];
  /** Preemptions already recorded, by victim: `to` of the one in force (the plan repeats it each tick until applied). */
  private readonly preempting = new Map<string, number>();

  constructor(
    private readonly store: JobStore,
    private readonly metrics: Metrics,
    readonly queues: QueueConfig[],
    private readonly log: (line: string) => void,
  ) {}

  /**
   * The pending jobs that start now and on which workers: their allowance is above 0 and enough
   * idle workers whose budgets hold their step are here (a worker whose advertised budget cannot
   * hold a job's step is not offered it). Records which head each backfilled job borrows from, and
   * makes a backfilled job whose head no longer waits an ordinary one. `busy` gains the chosen workers.
   */
  async starts(
    schedule: Schedule,
    jobs: JobRecord[],
    alive: WorkerInfo[],
    busy: Set<string>,
  ): Promise<{ job: JobRecord; world: WorkerInfo[]; head?: string }[]> {
    const out: { job: JobRecord; world: WorkerInfo[]; head?: string }[] = [];
    for (const job of jobs) {
      const allowed = job.state === 'pending' ? (schedule.allowance.get(job.id) ?? 0) : 0;
      if (allowed === 0) continue;
      const fits = (w: WorkerInfo) => !w.budget || !budgetShortfall(job.train, job.spec.minWorldSize ?? job.spec.worldSize, w.budget);
      const idle = alive.filter((w) => !busy.has(w.id) && !w.draining && fits(w));
      if (idle.length < minRanksOf(job)) continue;
      const world = idle.slice(0, Math.min(job.spec.worldSize, allowed));
      world.forEach((w) => busy.add(w.id));
      const head = schedule.backfilled.get(job.id);
      if (head !== job.backfilledFor) await this.store.update(job.id, (j) => void (j.backfilledFor = head));
      out.push({ job, world, head });
    }
    const waiting = new Set(jobs.filter((j) => j.state === 'pending').map((j) => j.id));
    for (const job of jobs.filter((j) => j.backfilledFor && !waiting.has(j.backfilledFor)))
      await this.store.update(job.id, (j) => void (j.backfilledFor = undefined));
    return out;
  }

  async decide(jobs: JobRecord[], idleRanks: number): Promise<Schedule> {
    const t0 = performance.now();
    const schedule = planAllowances(jobs.map(schedJob), this.queues, idleRanks);
    this.metrics.schedulerSeconds.observe((performance.now() - t0) / 1000);
    this.last = schedule;
    this.views = queueViews(this.queues, jobs, idleRanks);
    for (const v of this.views) {
      this.metrics.queueRanks.set({ queue: v.name }, v.runningRanks);
      this.metrics.queuePending.set({ queue: v.name }, v.pendingJobs);
      this.metrics.queueNominal.set({ queue: v.name }, v.nominalRanks);
    }
    await this.recordPreemptions(schedule, jobs);
    return schedule;
  }

  /** Records each new preemption on its victim (an event on the job) and in the metrics. */
  private async recordPreemptions(schedule: Schedule, jobs: JobRecord[]): Promise<void> {
    const victims = new Set(schedule.preemptions.map((p) => p.victim));
    for (const id of this.preempting.keys()) if (!victims.has(id)) this.preempting.delete(id);
    for (const p of schedule.preemptions) {
      if (this.preempting.get(p.victim) === p.to) continue;
      this.preempting.set(p.victim, p.to);
      const victim = jobs.find((j) => j.id === p.victim);
      if (!victim) continue;
      await this.store.update(p.victim, (j) => {
        j.preemptions = [
          ...(j.preemptions ?? []),
          { at: new Date().toISOString(), step: j.step, by: p.by, from: j.world.length, to: p.to, reason: p.reason },
        ].slice(-MAX_PREEMPTION_RECORDS);
      });
      this.metrics.preemptions.inc({ queue: victim.spec.queue, reason: p.reason });
      this.log(
        `[coordinator] job ${p.victim}: preempted by ${p.by} (${p.reason}): ${victim.world.length} -> ${p.to} rank(s) at its next step boundary${p.to === 0 ? ', checkpointed and requeued' : ''}`,
      );
    }
  }
}
