import { QueueConfig } from './queues';

/** What the scheduler knows of an active job: no records, no history, a few numbers. */
export interface SchedJob {
  id: string;
  queue: string;
  /** Higher runs first within a queue and may preempt lower. */
  priority: number;
  /** Admission order (smaller is older). */
  order: number;
  worldSize: number;
  /** Fewest ranks it runs on (gang: all of these or none). */
  minRanks: number;
  /** Ranks it holds now (0: pending). */
  holds: number;
  /** Started by backfill while this job waited at the head of the line: that job may take its ranks back. */
  backfilledFor?: string;
}

/** Why a running job gives up ranks. */
export interface Preemption {
  victim: string;
  /** Ranks it keeps (0: checkpointed and requeued). */
  to: number;
  by: string;
  reason: 'priority' | 'reclaim' | 'backfill';
}

export interface Schedule {
  /** Ranks each active job may hold after this pass (a pending job starts when its allowance is > 0 and that many ranks are idle). */
  allowance: Map<string, number>;
  preemptions: Preemption[];
  /** Jobs started by backfill in this pass, each with the blocked head whose reservation it borrows. */
  backfilled: Map<string, string>;
  /** The job at the head of the line that could not start, if any: it holds the reservation. */
  blocked?: string;
}

interface QueueState {
  config: QueueConfig;
  used: number;
  pending: SchedJob[];
}

/**
 * One scheduling decision over the pool: which pending jobs start, on how many ranks, which running
 * jobs shrink (toward their minimum, elastic: nothing lost) or stop (checkpointed and requeued) to
 * make room, and which grow back. `free` counts idle ranks.
 *
 * Order: queues by fair share (a queue under its nominal ranks first, then the lowest
 * ranks-held / weight), within a queue by priority then age. A job starts only when its minimum
 * fits (gang). When the head cannot start, it may take ranks from (a) running jobs of its own
 * queue with lower priority, (b) queues holding more than their nominal share while its queue holds
 * less (reclaim), (c) jobs started by backfill; the least important victims first, each shrunk
 * to its minimum before any is stopped. Otherwise it is `blocked`: later jobs may still start on
 * idle ranks, flagged as backfilled, so the blocked job can take them back at the next boundary
 * (backfill never delays it by more than a step), and may still preempt by priority or reclaim. Idle ranks left over grow running jobs back
 * toward their worldSize, in the same fair-share order.
 *
 * `backfill: false` (for comparison) starts nothing behind a blocked head.
 *
 * O(J log J + Q x J) for J active jobs and Q queues; reads nothing but its arguments.
 */
export function planAllowances(
  jobs: readonly SchedJob[],
  queues: readonly QueueConfig[],
  free: number,
  o: { backfill?: boolean } = {},
): Schedule {
  const backfill = o.backfill ?? true;
  const allowance = new Map<string, number>();
  const preemptions: Preemption[] = [];
  const backfilled = new Map<string, string>();
  const states = new Map<string, QueueState>(queues.map((q) => [q.name, { config: q, used: 0, pending: [] }]));
  const queueOf = (name: string): QueueState => {
    let s = states.get(name);
    if (!s) states.set(name, (s = { config: { name, nominalRanks: 0, weight: 1 }, used: 0, pending: [] }));
    return s;
  };
  const running = jobs.filter((j) => j.holds > 0);
  for (const j of running) {
    allowance.set(j.id, j.holds);
    queueOf(j.queue).used += j.holds;
  }
  const byImportance = (a: SchedJob, b: SchedJob) => b.priority - a.priority || a.order - b.order;
  for (const j of jobs) if (j.holds === 0) queueOf(j.queue).pending.push(j);
  for (const s of states.values()) s.pending.sort(byImportance);

  const shareKey = (s: QueueState) => [s.used < s.config.nominalRanks ? 0 : 1, s.used / s.config.weight] as const;
  const nextQueue = (): QueueState | undefined => {
    let best: QueueState | undefined;
    for (const s of states.values()) {
      if (!s.pending.length) continue;
      if (!best) {
        best = s;
        continue;
      }
      const [a0, a1] = shareKey(s);
      const [b0, b1] = shareKey(best);
      const head = s.pending[0] as SchedJob;
      const bestHead = best.pending[0] as SchedJob;
      if (a0 < b0 || (a0 === b0 && (a1 < b1 || (a1 === b1 && byImportance(head, bestHead) < 0)))) best = s;
    }
    return best;
  };

  /** Ranks `victim` can give to `taker` now, and why; 0 when it may not be preempted by it. */
  const reclaimable = (taker: SchedJob, victim: SchedJob): { ranks: number; reason: Preemption['reason'] } | undefined => {
    const held = allowance.get(victim.id) ?? 0;
    if (held === 0 || victim.id === taker.id) return undefined;
    const tq = queueOf(taker.queue);
    const vq = queueOf(victim.queue);
    let reason: Preemption['reason'] | undefined;
    if ((victim.backfilledFor ?? backfilled.get(victim.id)) === taker.id) reason = 'backfill';
    else if (victim.queue === taker.queue && victim.priority < taker.priority) reason = 'priority';
    else if (victim.queue !== taker.queue && vq.used > vq.config.nominalRanks && tq.used + taker.minRanks <= tq.config.nominalRanks)
      reason = 'reclaim';
    return reason ? { ranks: held, reason } : undefined;
  };

  let blocked: SchedJob | undefined;
  for (let q = nextQueue(); q; q = nextQueue()) {
    const job = q.pending.shift() as SchedJob;
    if (free < job.minRanks) {
      // Victims: least important first (backfilled, then lowest priority, then youngest). Backfilled
      // ranks go back only to the head whose reservation they borrowed.
      const candidates = running
        .map((v) => ({ v, r: reclaimable(job, v) }))
        .filter(
          (c): c is { v: SchedJob; r: { ranks: number; reason: Preemption['reason'] } } => !!c.r && !(blocked && c.r.reason === 'backfill'),
        )
        .sort(
          (a, b) =>
            Number(b.r.reason === 'backfill') - Number(a.r.reason === 'backfill') || a.v.priority - b.v.priority || b.v.order - a.v.order,
        );
      const shrinkable = candidates.reduce((n, c) => n + Math.max(0, (allowance.get(c.v.id) ?? 0) - c.v.minRanks), 0);
      const stoppable = candidates.reduce((n, c) => n + (allowance.get(c.v.id) ?? 0), 0);
      if (free + stoppable >= job.minRanks) {
        let short = job.minRanks - free;
        // Shrink first (elastic, the victim keeps running), then stop whole jobs if still short.
        for (const pass of ['shrink', 'stop'] as const) {
          if (pass === 'stop' && free + shrinkable >= job.minRanks) break;
          for (const { v, r } of candidates) {
            if (short <= 0) break;
            const held = allowance.get(v.id) ?? 0;
            const give = pass === 'shrink' ? Math.min(short, Math.max(0, held - v.minRanks)) : held;
            if (give <= 0) continue;
            allowance.set(v.id, held - give);
            queueOf(v.queue).used -= give;
            preemptions.push({ victim: v.id, to: held - give, by: job.id, reason: r.reason });
            short -= give;
            free += give;
          }
        }
      }
    }
    if (free >= job.minRanks && (!blocked || backfill)) {
      const ranks = Math.min(job.worldSize, free);
      allowance.set(job.id, ranks);
      free -= ranks;
      q.used += ranks;
      if (blocked) backfilled.set(job.id, blocked.id);
    } else {
      allowance.set(job.id, 0);
      blocked ??= job;
    }
  }

  // Idle ranks left: running jobs grow back toward worldSize, the lowest share first.
  if (!blocked && free > 0) {
    const growing = running
      .filter((j) => (allowance.get(j.id) ?? 0) >= j.minRanks && (allowance.get(j.id) ?? 0) < j.worldSize)
      .sort(
        (a, b) =>
          queueOf(a.queue).used / queueOf(a.queue).config.weight - queueOf(b.queue).used / queueOf(b.queue).config.weight ||
          byImportance(a, b),
      );
    for (const j of growing) {
      if (free <= 0) break;
      const held = allowance.get(j.id) ?? 0;
      const add = Math.min(free, j.worldSize - held);
      allowance.set(j.id, held + add);
      queueOf(j.queue).used += add;
      free -= add;
    }
  }
  return { allowance, preemptions, backfilled, blocked: blocked?.id };
}
