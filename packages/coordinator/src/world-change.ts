import type { JobRecord, WorkerInfo } from '@facenet/protocol';

/** How the world of a running job must change at a step boundary. */
export interface WorldChange {
  /** Members staying, in rank order. */
  survivors: WorkerInfo[];
  /** Members draining (SIGTERM): they leave now, and may still serve their weights. */
  leaving: WorkerInfo[];
  /** Members whose registration expired. */
  lost: string[];
  /** Idle workers joining, up to the job's worldSize. */
  joiners: WorkerInfo[];
}

export const membersOf = (ws: WorkerInfo[]) => ws.map((w) => ({ workerId: w.id, address: w.address }));

/**
 * The change a job's world needs now, if any: members draining or gone, and idle workers (alive,
 * not draining, in no running job's world: `busy`) to add up to its worldSize. `cap` is the
 * scheduler's allowance: members beyond it leave (preempted: the highest ranks go), and joiners
 * stop at it.
 */
export function planWorldChange(job: JobRecord, alive: WorkerInfo[], busy: Set<string>, cap = job.spec.worldSize): WorldChange | undefined {
  const byId = new Map(alive.map((w) => [w.id, w]));
  const inWorld = job.world.map((m) => byId.get(m.workerId));
  const staying = inWorld.filter((w): w is WorkerInfo => !!w && !w.draining);
  const survivors = staying.slice(0, Math.max(0, cap));
  const leaving = [...inWorld.filter((w): w is WorkerInfo => !!w && !!w.draining), ...staying.slice(survivors.length)];
  const lost = job.world.filter((m) => !byId.has(m.workerId)).map((m) => m.workerId);
  const mine = new Set(job.world.map((m) => m.workerId));
  const joiners =
    survivors.length < Math.min(job.spec.worldSize, cap)
      ? alive
          .filter((w) => !busy.has(w.id) && !mine.has(w.id) && !w.draining)
          .slice(0, Math.min(job.spec.worldSize, cap) - survivors.length)
      : [];
  return leaving.length || lost.length || joiners.length ? { survivors, leaving, lost, joiners } : undefined;
}
