import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { join } from 'node:path';
import { checkpointName, FaceSource } from '@facenet/core';
import { AbortMessage, CheckpointEvent, redisKeys, ShardJobResult, shardJobId, sourceFromSpec, trainingSource, WorkerInfo } from '@facenet/protocol';
import { FaultKind, FaultRecord, JobRecord, StepRecord } from '@facenet/protocol';
import { JobStore } from './job-store';
import { Membership } from './membership';
import { Metrics } from './metrics';
import { PlanLookup, PlanSwitch } from './plan-lookup';
import { transition } from './job-lifecycle';
import { planStep } from './planner';
import { queryState, surveyState, VerifiedState } from './state-survey';
import { WorkerJob, WorkerQueues } from './worker-queues';

export interface DriverOptions {
  prefix: string;
  checkpointRoot: string;
  stepTimeoutMs: number;
  /** Faults tolerated at one step before the job fails. */
  maxFaultsPerStep: number;
  faultSettleMs: number;
  /** How long a worker may take to say what it holds. */
  stateQueryTimeoutMs: number;
  log: (line: string) => void;
}

/** A step that did not commit; `done` fills with the ranks' results as they arrive, even after the fault. */
class StepFault extends Error {
  constructor(message: string, readonly kind: FaultKind, readonly done: ShardJobResult[] = [], readonly step?: PlannedStep, readonly stepMs = 0) {
    super(message);
  }
}

/** The mining plan a step was planned with, and the switch to record when it commits. */
interface PlannedStep {
  mining?: { version: number; step: number };
  switchTo?: PlanSwitch;
}

/** What reshape needs to know of a fault. */
interface FaultInfo {
  kind: FaultKind;
  reason: string;
  done?: ShardJobResult[];
  step?: PlannedStep;
  stepMs?: number;
}

/** How the world of a running job must change at a step boundary. */
interface WorldChange {
  /** Members staying, in rank order. */
  survivors: WorkerInfo[];
  /** Members draining (SIGTERM): they leave now, and may still serve their weights. */
  leaving: WorkerInfo[];
  /** Members whose registration expired. */
  lost: string[];
  /** Idle workers joining, up to the job's worldSize. */
  joiners: WorkerInfo[];
}

/** Checkpoint events of one job left waiting for the miner; older ones are dropped. */
const WAITING_EVENTS_KEPT = 3;

const members = (ws: WorkerInfo[]) => ws.map((w) => ({ workerId: w.id, address: w.address }));

/**
 * Runs jobs step by step: assigns idle workers to pending jobs, dispatches one shard job per
 * rank, waits for all of them and commits the step. Between steps it changes the world when a
 * member drains, dies or an idle worker can join; after a fault it continues from the weights
 * the survivors hold (verified by checksum), falling back to the last checkpoint only when no
 * survivor holds a verified state. Only one step per job is in flight; the next step's images
 * are prefetched by the workers during the current one.
 */
export class JobDriver {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly queues: WorkerQueues;
  private readonly plans: PlanLookup;
  private readonly sources = new Map<string, FaceSource>();
  private readonly loops = new Map<string, Promise<void>>();
  private checkpointQueue: Queue | undefined;
  private stopping = false;

  constructor(
    private readonly redis: IORedis, private readonly store: JobStore, private readonly membership: Membership,
    private readonly metrics: Metrics, private readonly o: DriverOptions,
  ) {
    this.keys = redisKeys(o.prefix);
    this.queues = new WorkerQueues(redis, o.prefix);
    this.plans = new PlanLookup(redis, o.prefix, o.log);
  }

  private trainSource(job: JobRecord): FaceSource {
    let s = this.sources.get(job.id);
    if (!s) {
      s = trainingSource(sourceFromSpec(job.spec.dataset), job.spec.holdout, job.train.seed).train;
      this.sources.set(job.id, s);
    }
    return s;
  }

  checkpointDir(jobId: string): string {
    return join(this.o.checkpointRoot, jobId);
  }

  /** One scheduling pass: release idle draining workers, start pending jobs on idle workers, drive running ones. */
  async tick(): Promise<void> {
    if (this.stopping) return;
    const jobs = await this.store.list();
    const alive = await this.membership.alive();
    const busy = new Set(jobs.filter((j) => j.state === 'running').flatMap((j) => j.world.map((w) => w.workerId)));
    for (const w of alive) if (w.draining && !busy.has(w.id)) await this.release(w.id);
    for (const job of jobs) {
      if (job.state !== 'pending') continue;
      const idle = alive.filter((w) => !busy.has(w.id) && !w.draining);
      // Without minWorldSize a new job waits for its full world, and one that ran before continues
      // on what is there; either way it grows back to worldSize at step boundaries.
      const need = job.spec.minWorldSize ?? (job.generation === 0 ? job.spec.worldSize : 1);
      if (idle.length < need) continue;
      const world = idle.slice(0, job.spec.worldSize);
      world.forEach((w) => busy.add(w.id));
      // The chosen workers may hold the job's weights (a paused job, a world that shrank below
      // minWorldSize): reshape asks them, and loads the last checkpoint only if none does.
      await this.reshape(job, { survivors: world, leaving: [], lost: [], joiners: [] }, 'starting');
    }
    for (const job of await this.store.list()) {
      if (job.state === 'running' && !this.loops.has(job.id)) {
        const loop = this.drive(job.id).catch((err: Error) => this.o.log(`[coordinator] job ${job.id}: driver error: ${err.message}`)).finally(() => this.loops.delete(job.id));
        this.loops.set(job.id, loop);
      }
    }
  }

  /** Lets a draining worker leave (it is in no running job's world). */
  private async release(workerId: string): Promise<void> {
    await this.redis.set(this.keys.workerReleased(workerId), '1', 'PX', 120_000);
  }

  private async drive(id: string): Promise<void> {
    while (!this.stopping) {
      const job = await this.store.get(id);
      if (job.state !== 'running') return;
      const request = await this.store.takeRequest(id);
      if (request) {
        await this.store.update(id, (j) => transition(j, request));
        this.o.log(`[coordinator] job ${id}: ${request === 'pause' ? 'paused' : 'cancelled'} at step ${job.step}`);
        return;
      }
      if (job.step >= job.train.steps) {
        await this.store.update(id, (j) => transition(j, 'complete'));
        this.o.log(`[coordinator] job ${id}: completed ${job.step} steps`);
        return;
      }
      const change = await this.worldChange(job);
      if (change) {
        const lost = change.lost.length ? { kind: 'worker-lost' as const, reason: `worker(s) ${change.lost.join(', ')} stopped heartbeating between steps` } : undefined;
        if (lost) this.metrics.faults.inc({ job: id });
        const why = [change.leaving.length ? `${change.leaving.map((w) => w.id).join(', ')} drained` : '', change.joiners.length ? `${change.joiners.map((w) => w.id).join(', ')} joined` : ''];
        await this.reshape(job, change, why.filter(Boolean).join('; ') || 'world changed', lost);
        continue;
      }
      try {
        await this.runStep(job);
      } catch (err) {
        if (this.stopping) return;
        if ((await this.store.get(id)).state !== 'running') return;
        const f = err instanceof StepFault ? err : new StepFault((err as Error).message, 'step-failed');
        await this.fault(job, f);
      }
    }
  }

  /** The change a job's world needs now (members draining or gone, idle workers to add), if any. */
  private async worldChange(job: JobRecord): Promise<WorldChange | undefined> {
    const alive = await this.membership.alive();
    const byId = new Map(alive.map((w) => [w.id, w]));
    const inWorld = job.world.map((m) => byId.get(m.workerId));
    const survivors = inWorld.filter((w): w is WorkerInfo => !!w && !w.draining);
    const leaving = inWorld.filter((w): w is WorkerInfo => !!w && !!w.draining);
    const lost = job.world.filter((m) => !byId.has(m.workerId)).map((m) => m.workerId);
    let joiners: WorkerInfo[] = [];
    if (survivors.length < job.spec.worldSize) {
      const others = await this.store.list();
      const busy = new Set(others.filter((j) => j.state === 'running').flatMap((j) => j.world.map((w) => w.workerId)));
      joiners = alive.filter((w) => !busy.has(w.id) && !w.draining).slice(0, job.spec.worldSize - survivors.length);
    }
    return leaving.length || lost.length || joiners.length ? { survivors, leaving, lost, joiners } : undefined;
  }

  private async waitForAll(job: JobRecord, jobs: WorkerJob[], done: ShardJobResult[], planned: PlannedStep): Promise<ShardJobResult[]> {
    const ids = job.world.map((w) => w.workerId);
    let watching = true;
    const watch = (async () => {
      while (watching) {
        await new Promise((r) => setTimeout(r, 1000));
        if (watching && !(await this.membership.isAlive(ids))) throw new StepFault('a worker of the ring stopped heartbeating', 'worker-lost', done, planned);
      }
      return [] as ShardJobResult[];
    })();
    try {
      const all = Promise.all(jobs.map(async (j, r) => {
        try {
          const res = (await this.queues.result(ids[r] as string, j, this.o.stepTimeoutMs)) as ShardJobResult;
          done.push(res);
          return res;
        } catch (err) {
          throw new StepFault(`rank ${r} (${ids[r]}): ${(err as Error).message}`, 'step-failed', done, planned);
        }
      }));
      return await Promise.race([all, watch]);
    } finally {
      watching = false;
      watch.catch(() => undefined);
    }
  }

  private async runStep(job: JobRecord): Promise<void> {
    const s = job.step;
    const W = job.world.length;
    const t = job.train;
    const src = this.trainSource(job);
    const { plan: mining, switchTo } = await this.plans.planFor(job, s);
    const plan = planStep(src, t, s, W, job.spec.curriculum, mining);
    // Only a prefetch: the worker keys decoded images by their content, so if step s+1's plan
    // differs when it runs (a newer mining plan, a new world), it decodes anew.
    const next = s + 1 < t.steps ? planStep(src, t, s + 1, W, job.spec.curriculum, mining) : undefined;
    const done = s + 1;
    const checkpointDue = (t.checkpointEvery > 0 && done % t.checkpointEvery === 0) || done === t.steps;
    const checksum = job.spec.checksumEvery > 0 && (done % job.spec.checksumEvery === 0 || done === t.steps);
    const world = job.world.map((w) => w.address);
    const holders = new Set(job.stateHolders ?? []);
    const t0 = performance.now();
    const jobs = await Promise.all(job.world.map((m, rank) => this.queues.add(m.workerId, {
      jobId: job.id, step: s, rank, generation: job.generation, world,
      shards: plan[rank] ?? [], prefetch: next ? { step: s + 1, shards: next[rank] ?? [] } : undefined,
      dataset: job.spec.dataset, train: t, restoreFrom: job.restoreFrom, trustHeld: holders.has(m.workerId),
      checkpointDir: checkpointDue && rank === 0 ? this.checkpointDir(job.id) : undefined, checksum,
      learningRateScale: job.learningRateScale ?? 1,
    }, shardJobId(job.id, s, rank, job.generation))));
    const planned: PlannedStep = { mining: mining && { version: mining.version, step: mining.step }, switchTo };
    const results = await this.waitForAll(job, jobs, [], planned);
    const stepMs = performance.now() - t0;
    const rejected = results.filter((r) => r.nonFinite);
    if (rejected.length === results.length) return this.rollBackNonFinite(job, rejected[0]?.nonFinite as string);
    if (rejected.length > 0) throw new StepFault(`ranks disagree on the non-finite guard: ${rejected.map((r) => `rank ${r.rank}`).join(', ')} rejected step ${done}`, 'step-failed', results, planned, stepMs);
    if (checksum) {
      const sums = new Set(results.map((r) => r.checksum));
      if (sums.size !== 1) {
        const detail = results.map((r) => `rank ${r.rank}: ${r.checksum?.slice(0, 12)}`).join(', ');
        await this.store.update(job.id, (j) => transition(j, 'fail', `weights diverged between ranks after step ${done} (${detail})`));
        this.o.log(`[coordinator] job ${job.id}: FAILED: weights diverged between ranks after step ${done} (${detail})`);
        return;
      }
    }
    await this.commit(job, results, stepMs, planned, {});
  }

  /** Records step job.step + 1 as done, from its ranks' results, and announces its checkpoint. */
  private async commit(job: JobRecord, results: ShardJobResult[], stepMs: number, planned: PlannedStep, extra: Partial<StepRecord>): Promise<void> {
    const s = job.step;
    const done = s + 1;
    const r0 = results.find((r) => r.rank === 0) ?? (results[0] as ShardJobResult);
    const checkpoint = results.find((r) => r.checkpoint)?.checkpoint;
    const { mining, switchTo } = planned;
    const record: StepRecord = {
      ...r0.stats, step: done, generation: job.generation, stepMs, imagesPerSecond: stepMs > 0 ? r0.stats.images / (stepMs / 1000) : 0,
      timings: results.map((r) => r.timings), planVersion: mining?.version, minerLag: mining ? s - mining.step : undefined,
      ...(done <= job.highWater ? { replay: true } : {}), ...extra,
    };
    for (const sk of results.flatMap((r) => r.skipped)) this.o.log(`[coordinator] job ${job.id} step ${done}: skipped ${sk.key}: ${sk.reason}`);
    await this.store.update(job.id, (j) => {
      j.step = done;
      j.highWater = Math.max(j.highWater ?? 0, done);
      if (switchTo) j.planSwitches = [...j.planSwitches.filter((p) => p.fromStep < s), switchTo];
      j.last = record;
      j.history.push(record);
      if (j.history.length > 200) j.history.splice(0, j.history.length - 200);
      if (checkpoint) {
        j.checkpoints.push({ step: done, dir: checkpoint, createdAt: new Date().toISOString() });
        j.restoreFrom = checkpoint;
      }
    });
    this.observe(job.id, record, results, job.world.length);
    if (checkpoint) await this.announceCheckpoint(job.id, done, checkpoint);
  }

  /**
   * Puts a checkpoint event on the queue the miner consumes. Events of the same job still
   * waiting beyond the newest few are dropped (the miner mines only the newest anyway) and their
   * steps recorded as skipped, so the queue stays bounded when no miner runs.
   */
  private async announceCheckpoint(jobId: string, step: number, dir: string): Promise<void> {
    const q = (this.checkpointQueue ??= new Queue(this.keys.checkpointQueue, { connection: this.redis, prefix: this.keys.bull }));
    const event: CheckpointEvent = { jobId, step, dir };
    await q.add('checkpoint', event, { jobId: `${jobId}-ckpt-${step}`, removeOnComplete: { count: 1000 }, removeOnFail: { count: 1000 } });
    const waiting = (await q.getWaiting(0, 10_000)).filter((e) => (e.data as { jobId: string }).jobId === jobId);
    const stale = waiting.sort((a, b) => (b.data as { step: number }).step - (a.data as { step: number }).step).slice(WAITING_EVENTS_KEPT);
    for (const e of stale) {
      await e.remove().catch(() => undefined); // taken by the miner meanwhile: fine
      await this.redis.rpush(this.keys.skippedCheckpoints(jobId), String((e.data as { step: number }).step));
    }
  }

  private observe(jobId: string, r: StepRecord, results: ShardJobResult[], world: number): void {
    const m = this.metrics;
    m.step.set({ job: jobId }, r.step);
    m.loss.set({ job: jobId }, r.loss);
    m.active.set({ job: jobId }, r.activeFraction);
    m.imagesPerSecond.set({ job: jobId }, r.imagesPerSecond);
    m.worldSize.set({ job: jobId }, world);
    if (r.minerLag !== undefined) m.minerLag.set({ job: jobId }, r.minerLag);
    for (const res of results) {
      for (const [phase, ms] of Object.entries(res.timings)) m.phase.observe({ job: jobId, phase: phase.replace(/Ms$/, '') }, ms / 1000);
      m.allreduceBytes.inc({ job: jobId }, res.allreduceBytes);
    }
  }

  /**
   * Every rank rejected the step (NaN or Inf in its loss, gradients or new weights) and applied
   * nothing: retry it from the weights they hold with a lower learning rate, or fail the job
   * after `maxRollbacks` such rollbacks.
   */
  private async rollBackNonFinite(job: JobRecord, detail: string): Promise<void> {
    const g = job.spec.nonFinite;
    this.metrics.nonFinite.inc({ job: job.id });
    this.metrics.faults.inc({ job: job.id });
    const updated = await this.store.update(job.id, (j) => {
      const rollbacks = (j.nonFiniteRollbacks ?? 0) + 1;
      const scale = (j.learningRateScale ?? 1) * g.learningRateFactor;
      j.nonFiniteRollbacks = rollbacks;
      j.faults.push({ at: new Date().toISOString(), step: j.step, generation: j.generation, kind: 'non-finite', reason: detail, resumedAt: j.step, stepsLost: 0, recovery: 'rollback' });
      if (rollbacks > g.maxRollbacks) {
        transition(j, 'fail', `${detail}; gave up after ${g.maxRollbacks} rollback(s) with the learning rate lowered to ${(j.learningRateScale ?? 1).toExponential(1)} x the schedule (nonFinite.maxRollbacks). The weights every rank holds are those after step ${j.step}: resume from an earlier checkpoint with a lower learning rate`);
        return;
      }
      j.learningRateScale = scale;
      j.generation++; // new shard job and collective ids for the retried step
      j.stateHolders = j.world.map((w) => w.workerId); // nothing was applied: every rank still holds step j.step
    });
    this.metrics.learningRateScale.set({ job: job.id }, updated.learningRateScale ?? 1);
    this.o.log(`[coordinator] job ${job.id}: ${detail}; ${updated.state === 'failed' ? `FAILED: ${updated.error}` : `rolled back (${updated.nonFiniteRollbacks}/${job.spec.nonFinite.maxRollbacks}), retrying step ${updated.step + 1} with the learning rate x ${(updated.learningRateScale ?? 1).toExponential(1)}`}`);
  }

  /** A step failed or a rank died: abandon the generation, then change the world from the survivors. */
  private async fault(job: JobRecord, f: StepFault): Promise<void> {
    this.metrics.faults.inc({ job: job.id });
    const abort: AbortMessage = { jobId: job.id, generation: job.generation };
    await this.redis.publish(this.keys.abortChannel, JSON.stringify(abort));
    // A worker that just died still looks alive until its registration expires.
    await new Promise((r) => setTimeout(r, this.o.faultSettleMs));
    const change = (await this.worldChange(job)) ?? { survivors: [], leaving: [], lost: [], joiners: [] };
    if (!change.leaving.length && !change.lost.length && !change.joiners.length) {
      // Everyone is still here: the step failed on its own (a timeout, a bad image path); same world.
      const byId = new Map((await this.membership.alive()).map((w) => [w.id, w]));
      change.survivors = job.world.map((m) => byId.get(m.workerId)).filter((w): w is WorkerInfo => !!w);
    }
    await this.reshape(job, change, `fault at step ${job.step + 1} (${f.message})`, { kind: f.kind, reason: f.message, done: f.done, step: f.step, stepMs: f.stepMs });
  }

  /**
   * Moves the job to a new generation with the changed world. The weights come from the members
   * that hold a verified state (they keep it; others load it from a checkpoint that one of them
   * writes, unless one exists at that step); only if none does, from the last checkpoint.
   */
  private async reshape(job: JobRecord, c: WorldChange, why: string, f?: FaultInfo): Promise<void> {
    const world = [...c.survivors, ...c.joiners];
    const minWorld = job.spec.minWorldSize ?? 1;
    const sources = [...c.survivors, ...c.leaving].map((w) => w.id).filter((id) => !c.lost.includes(id));
    const survey = sources.length ? await surveyState(this.queues, job, sources, this.o.stateQueryTimeoutMs) : { answers: [] };
    let state: VerifiedState | undefined = survey.state;
    let restoreFrom = job.restoreFrom;
    let written: { step: number; dir: string } | undefined;
    if (state && state.step > 0) {
      const needers = world.filter((w) => !state!.holders.includes(w.id));
      if (needers.length > 0 || world.length < minWorld) {
        const existing = job.checkpoints.find((x) => x.step === state!.step);
        if (existing) restoreFrom = existing.dir;
        else {
          const dir = join(this.checkpointDir(job.id), checkpointName(state.step));
          try {
            const h = await queryState(this.queues, job, state.holders[0] as string, this.o.stepTimeoutMs, dir);
            if (!h?.checkpoint || h.checksum !== state.checksum) throw new Error(`holder answered ${h ? `${h.step} ${h.checksum.slice(0, 12)}` : 'nothing'}`);
            restoreFrom = dir;
            written = { step: state.step, dir };
          } catch (err) {
            this.o.log(`[coordinator] job ${job.id}: cannot write the survivors' state as a checkpoint (${(err as Error).message}); falling back to the last checkpoint`);
            state = undefined;
          }
        }
      }
    }
    const last = job.checkpoints[job.checkpoints.length - 1];
    const step = state ? state.step : (last?.step ?? 0);
    if (!state) restoreFrom = last?.dir ?? null;
    const committed = job.step;
    const inflight = f?.done?.filter((r) => r.step === committed && !r.nonFinite) ?? [];
    if (state && step === committed + 1 && inflight.length > 0) {
      // Every rank applied the step in flight before one died: commit it from the results in hand.
      await this.commit(job, inflight, f?.stepMs ?? 0, f?.step ?? {}, { recovered: true });
    } else if (state && step === committed + 1) {
      state = undefined; // applied, but no result to record: treat as not verified
    }
    const updated = await this.store.update(job.id, (j) => {
      j.generation++;
      const finalStep = state ? step : (last?.step ?? 0);
      if (written) {
        j.checkpoints.push({ step: written.step, dir: written.dir, createdAt: new Date().toISOString() });
      }
      if (f) {
        const fault: FaultRecord = {
          at: new Date().toISOString(), step: committed, generation: job.generation, kind: f.kind, reason: f.reason,
          resumedAt: finalStep, stepsLost: Math.max(0, committed - finalStep), recovery: state ? 'survivors' : 'checkpoint',
        };
        j.faults.push(fault);
      }
      if (finalStep < j.step) for (const h of j.history) if (h.step > finalStep) h.rolledBack = true;
      j.step = finalStep;
      j.restoreFrom = state ? restoreFrom : (last?.dir ?? null);
      j.stateHolders = state ? state.holders.filter((id) => world.some((w) => w.id === id)) : [];
      const atThisStep = j.faults.filter((x) => x.step === committed && x.kind !== 'non-finite').length;
      if (f && atThisStep > this.o.maxFaultsPerStep) {
        transition(j, 'fail', `step ${committed + 1} failed ${atThisStep} times; last: ${f.reason}`);
      } else if (world.length >= minWorld && world.length > 0) {
        if (j.state === 'pending') transition(j, 'start');
        j.world = members(world);
      } else if (j.state === 'running') {
        transition(j, 'wait');
      }
    });
    for (const w of c.leaving) await this.release(w.id);
    for (const id of c.lost) await this.queues.forget(id);
    if (written) await this.announceCheckpoint(job.id, written.step, written.dir);
    const from = state ? `verified state held by workers at step ${updated.step} (${state.holders.length} holder(s)${written ? `, written to ${written.dir} for the others` : ''})` : `checkpoint at step ${updated.step}`;
    this.o.log(`[coordinator] job ${job.id}: ${why}; generation ${updated.generation}, ${updated.state === 'running' ? `continuing on ${updated.world.length} worker(s) from the ${from}` : updated.state === 'failed' ? `FAILED: ${updated.error}` : `pending (fewer than minWorldSize ${minWorld} workers), from the ${from}`}`);
    if (survey.answers.length) this.o.log(`[coordinator] job ${job.id}: state survey: ${survey.answers.join('; ')}`);
  }

  /** Stops scheduling and waits for the job loops to reach a step boundary. */
  async close(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.loops.values()]);
    await this.queues.close();
    await this.checkpointQueue?.close().catch(() => undefined);
  }
}
