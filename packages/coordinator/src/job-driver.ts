import IORedis from 'ioredis';
import { join } from 'node:path';
import { FaceSource } from '@facenet/core';
import {
  collectiveSecret,
  JobRecord,
  redisKeys,
  shardJobId,
  jobDataSource,
  trainingSource,
  WorkerInfo,
  ringPlace,
} from '@facenet/protocol';
import { AbortChannel, DatasetIndexStore } from '@facenet/service-kit';
import { transition } from './job-lifecycle';
import { JobStore } from './job-store';
import { Membership } from './membership';
import { Metrics } from './metrics';
import { rollBackNonFinite } from './non-finite-rollback';
import { PlanLookup } from './plan-lookup';
import { planBatch } from './batch-planner';
import { PlannedStep, StepLedger } from './step-ledger';
import { planWorldChange, WorldChange } from './world-change';
import { PoolScheduler, QueueView } from './scheduling/pool-scheduler';
import { Preemption } from './scheduling/plan-allowances';
import { QueueConfig } from './scheduling/queues';
import { WorldReshaper } from './world-reshaper';
import { Durability } from './durability';
import { WorkerInboxes } from './worker-inboxes';
import { awaitStepResults, StepFault } from './step-results';
import { failIfLearningNothing, failRejectedJob } from './job-failures';

export interface DriverOptions {
  prefix: string;
  checkpointRoot: string;
  stepTimeoutMs: number;
  /** Faults tolerated at one step before the job fails. */
  maxFaultsPerStep: number;
  /** Storage faults since the last durable checkpoint before the job fails instead of pausing. */
  maxStorageFaults: number;
  faultSettleMs: number;
  /** How long a member whose heartbeat lapsed but whose process answers is waited for before it counts as lost. */
  lateWorkerGraceMs: number;
  /** How long a worker may take to say what it holds. */
  stateQueryTimeoutMs: number;
  /** Team queues: quotas and fair-share weights. */
  queues: QueueConfig[];
  log: (line: string) => void;
}

/**
 * Runs jobs step by step: assigns idle workers to pending jobs, sends one shard job to each
 * rank's inbox, waits for all of their answers and commits the step. Between steps it changes the world when a
 * member drains, dies or an idle worker can join; after a fault it continues from the weights
 * the survivors hold (verified by checksum), falling back to the last checkpoint only when no
 * survivor holds a verified state. Only one step per job is in flight; the next step's images
 * are prefetched by the workers during the current one.
 */
export class JobDriver {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly inboxes: WorkerInboxes;
  private readonly plans: PlanLookup;
  private readonly sources = new Map<string, FaceSource>();
  private readonly loops = new Map<string, Promise<void>>();
  private readonly ledger: StepLedger;
  private readonly reshaper: WorldReshaper;
  private readonly durability: Durability;
  private readonly indexes: DatasetIndexStore;
  private readonly aborts: AbortChannel;
  private stopping = false;
  private readonly scheduler: PoolScheduler;

  constructor(
    private readonly redis: IORedis,
    private readonly store: JobStore,
    private readonly membership: Membership,
    private readonly metrics: Metrics,
    private readonly o: DriverOptions,
  ) {
    this.keys = redisKeys(o.prefix);
    this.indexes = new DatasetIndexStore(redis, o.prefix);
    this.aborts = new AbortChannel(redis, this.keys.abortChannel);
    this.inboxes = new WorkerInboxes(redis, o.prefix, (l) => o.log(`[coordinator] worker inboxes: ${l}`));
    this.plans = new PlanLookup(redis, o.prefix, o.log);
    this.ledger = new StepLedger(redis, store, metrics, o.prefix, o.log, (id) => this.checkpointDir(id));
    this.reshaper = new WorldReshaper(redis, store, this.inboxes, this.ledger, {
      ...o,
      checkpointDir: (id) => this.checkpointDir(id),
      stopping: () => this.stopping,
    });
    this.scheduler = new PoolScheduler(store, metrics, o.queues, o.log);
    this.durability = new Durability(store, this.inboxes, this.ledger, metrics, {
      ...o,
      checkpointDir: (id) => this.checkpointDir(id),
    });
  }

  /**
   * The job's training split, built once per job while it runs (released when its loop ends),
   * from the index stored at admission: no rescan, nothing per image on the event loop the API
   * and the lock renewal share.
   */
  private async trainSource(job: JobRecord): Promise<FaceSource> {
    let s = this.sources.get(job.id);
    if (!s) {
      s = trainingSource(await jobDataSource(job.spec.dataset, job.dataIndex, this.indexes), job.spec.holdout, job.train.seed).train;
      this.sources.set(job.id, s);
    }
    return s;
  }

  checkpointDir(jobId: string): string {
    return join(this.o.checkpointRoot, jobId);
  }

  /** GET /v1/queues: each queue as of the last decision, the job holding the reservation, the preemptions in force. */
  queueStatus(): { queues: QueueView[]; blocked: string | null; preemptions: Preemption[] } {
    return {
      queues: this.scheduler.views,
      blocked: this.scheduler.last?.blocked ?? null,
      preemptions: this.scheduler.last?.preemptions ?? [],
    };
  }

  /**
   * One scheduling pass: release idle draining workers, decide every active job's ranks
   * (planAllowances: queues, priorities, gang, backfill, preemption), start pending jobs whose
   * ranks are idle, drive running ones. A running job gives up or gains ranks at its own next
   * step boundary (its loop reads the decision).
   */
  async tick(): Promise<void> {
    if (this.stopping) return;
    const jobs = await this.store.active();
    const alive = await this.membership.alive();
    const busy = new Set(jobs.filter((j) => j.state === 'running').flatMap((j) => j.world.map((w) => w.workerId)));
    for (const w of alive) if (w.draining && !busy.has(w.id)) await this.reshaper.release(w.id);
    const idleCount = alive.filter((w) => !busy.has(w.id) && !w.draining).length;
    const schedule = await this.scheduler.decide(jobs, idleCount);
    for (const { job, world, head } of await this.scheduler.starts(schedule, jobs, alive, busy)) {
      // The chosen workers may hold the job's weights (a paused job, a world that shrank below
      // minWorldSize): reshape asks them, and loads the last checkpoint only if none does.
      await this.reshaper.reshape(
        job,
        { survivors: world, leaving: [], lost: [], joiners: [] },
        head ? `starting (backfill while ${head} waits)` : 'starting',
      );
    }
    for (const job of await this.store.inStates(['running'])) {
      if (job.state === 'running' && !this.loops.has(job.id)) {
        const loop = this.drive(job.id)
          .catch((err: Error) => this.o.log(`[coordinator] job ${job.id}: driver error: ${err.message}`))
          .finally(() => {
            this.loops.delete(job.id);
            this.sources.delete(job.id); // a paused or finished job's index is not kept
          });
        this.loops.set(job.id, loop);
      }
    }
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
        // Completed only with the final weights on disk (a refused final checkpoint paused the job).
        let durable: boolean;
        try {
          durable = await this.durability.finalStateDurable(job);
        } catch (err) {
          if (this.stopping) return;
          await this.fault(job, new StepFault(`final checkpoint: ${(err as Error).message}`, 'step-failed'));
          continue;
        }
        if (!durable) return;
        await this.store.update(id, (j) => transition(j, 'complete'));
        this.o.log(`[coordinator] job ${id}: completed ${job.step} steps, final checkpoint ${job.step} on disk`);
        return;
      }
      const change = await this.worldChange(job);
      if (change) {
        const lost = change.lost.length
          ? { kind: 'worker-lost' as const, reason: `worker(s) ${change.lost.join(', ')} stopped heartbeating between steps` }
          : undefined;
        if (lost) this.metrics.faults.inc({ job_id: id });
        const drained = change.leaving.filter((w) => w.draining);
        const preempted = change.leaving.filter((w) => !w.draining);
        const why = [
          drained.length ? `${drained.map((w) => w.id).join(', ')} drained` : '',
          preempted.length ? `${preempted.map((w) => w.id).join(', ')} preempted (scheduler)` : '',
          change.joiners.length ? `${change.joiners.map((w) => w.id).join(', ')} joined` : '',
        ];
        await this.reshaper.reshape(job, change, why.filter(Boolean).join('; ') || 'world changed', lost);
        continue;
      }
      try {
        await this.runStep(job);
      } catch (err) {
        if (this.stopping) return;
        if ((await this.store.get(id)).state !== 'running') return;
        // A cancel interrupts the step in flight: no fault, the loop's next turn takes the request.
        if ((await this.store.peekRequest(id)) === 'cancel') continue;
        const f = err instanceof StepFault ? err : new StepFault((err as Error).message, 'step-failed');
        await this.fault(job, f);
      }
    }
  }

  /** The change a job's world needs now (members draining or gone, idle workers to add, ranks the scheduler takes back), if any. */
  private async worldChange(job: JobRecord): Promise<WorldChange | undefined> {
    const alive = await this.membership.alive();
    const running = (await this.store.inStates(['running'])).filter((j) => j.id !== job.id);
    const cap = this.scheduler.last?.allowance.get(job.id) ?? job.world.length;
    const change = planWorldChange(job, alive, new Set(running.flatMap((j) => j.world.map((w) => w.workerId))), cap);
    // Members whose registration lapsed but whose process still answers are late, not lost: no
    // change yet (the next look finds them registered again, or confirmed gone).
    if (change?.lost.length && (await this.membership.confirmLost(change.lost, this.o.lateWorkerGraceMs)).length < change.lost.length)
      return undefined;
    return change;
  }

  private async runStep(job: JobRecord): Promise<void> {
    const s = job.step;
    const W = job.world.length;
    const t = job.train;
    const src = await this.trainSource(job);
    const { plan: mining, switchTo } = await this.plans.planFor(job, s);
    const plan = planBatch(src, t, s, W, job.spec.curriculum, mining);
    // Only a prefetch: the worker keys decoded images by their content, so if step s+1's plan
    // differs when it runs (a newer mining plan, a new world), it decodes anew.
    const next = s + 1 < t.steps ? planBatch(src, t, s + 1, W, job.spec.curriculum, mining) : undefined;
    const done = s + 1;
    const checkpointDue = (t.checkpointEvery > 0 && done % t.checkpointEvery === 0) || done === t.steps;
    const checksum = job.spec.checksumEvery > 0 && (done % job.spec.checksumEvery === 0 || done === t.steps);
    const world = job.world.map((w) => w.address);
    const holders = new Set(job.stateHolders ?? []);
    const t0 = performance.now();
    const secret = collectiveSecret(job.secretSeed ?? job.id, job.generation);
    const jobs = await Promise.all(
      job.world.map((m, rank) =>
        this.inboxes.add(
          m.workerId,
          {
            jobId: job.id,
            step: s,
            rank,
            generation: job.generation,
            ring: ringPlace(world, rank),
            shards: plan[rank] ?? [],
            prefetch: next ? { step: s + 1, shards: next[rank] ?? [] } : undefined,
            dataset: job.spec.dataset,
            dataIndex: job.dataIndex?.id,
            train: t,
            restoreFrom: job.restoreFrom,
            trustHeld: holders.has(m.workerId),
            checkpointDir: checkpointDue && rank === 0 ? this.checkpointDir(job.id) : undefined,
            checksum,
            learningRateScale: job.learningRateScale ?? 1,
            collectiveSecret: secret,
            compression: job.spec.allreduce?.compression ?? 'none', // jobs stored before the option have none
            algorithm: job.spec.allreduce?.algorithm ?? 'auto',
          },
          shardJobId(job.id, s, rank, job.generation),
        ),
      ),
    );
    const planned: PlannedStep = { mining: mining && { version: mining.version, step: mining.step }, switchTo };
    const results = await awaitStepResults({ inboxes: this.inboxes, membership: this.membership, ...this.o }, job, jobs, [], planned);
    const stepMs = performance.now() - t0;
    const rejected = results.filter((r) => r.nonFinite);
    if (rejected.length === results.length)
      return rollBackNonFinite(this.store, this.metrics, this.o.log, job, rejected[0]?.nonFinite as string);
    if (rejected.length > 0)
      throw new StepFault(
        `ranks disagree on the non-finite guard: ${rejected.map((r) => `rank ${r.rank}`).join(', ')} rejected step ${done}`,
        'step-failed',
        results,
        planned,
        stepMs,
      );
    if (checksum) {
      const sums = new Set(results.map((r) => r.checksum));
      if (sums.size !== 1) {
        const detail = results.map((r) => `rank ${r.rank}: ${r.checksum?.slice(0, 12)}`).join(', ');
        await this.store.update(job.id, (j) => transition(j, 'fail', `weights diverged between ranks after step ${done} (${detail})`));
        this.o.log(`[coordinator] job ${job.id}: FAILED: weights diverged between ranks after step ${done} (${detail})`);
        return;
      }
    }
    const committed = await this.ledger.commit(job, results, stepMs, planned, {});
    if (await failIfLearningNothing(this.store, this.o.log, committed)) return;
    const refused = results.find((r) => r.checkpointError)?.checkpointError;
    if (refused) {
      await this.durability.storageFault(
        job.id,
        `checkpoint of step ${done} refused at ${refused.path}: ${refused.reason} (${refused.code})`,
      );
    }
  }

  /** A step failed or a rank died: abandon the generation, then change the world from the survivors. */
  private async fault(job: JobRecord, f: StepFault): Promise<void> {
    await this.aborts.publish({ jobId: job.id, generation: job.generation });
    if (f.kind === 'storage') return this.durability.storageFault(job.id, f.message, f.errorClass);
    // A worker refused the job itself as invalid: every re-plan would be refused alike.
    if (f.kind === 'rejected') return failRejectedJob(this.store, this.o.log, job, f.message, f.errorClass);
    this.metrics.faults.inc({ job_id: job.id });
    // A worker that just died still looks alive until its registration expires.
    await new Promise((r) => setTimeout(r, this.o.faultSettleMs));
    const change = (await this.worldChange(job)) ?? { survivors: [], leaving: [], lost: [], joiners: [] };
    if (!change.leaving.length && !change.lost.length && !change.joiners.length) {
      // Everyone is still here: the step failed on its own (a timeout, a bad image path); same world.
      const byId = new Map((await this.membership.alive()).map((w) => [w.id, w]));
      change.survivors = job.world.map((m) => byId.get(m.workerId)).filter((w): w is WorkerInfo => !!w);
    }
    await this.reshaper.reshape(job, change, `fault at step ${job.step + 1} (${f.message})`, {
      kind: f.kind,
      reason: f.message,
      done: f.done,
      step: f.step,
      stepMs: f.stepMs,
      errorClass: f.errorClass,
    });
  }

  /** Starts nothing more: job loops end at their next step boundary (the lock or state is gone). */
  halt(): void {
    this.stopping = true;
  }

  /**
   * Stops driving: ends every wait on workers at once (a step in flight finishes on the workers;
   * the next coordinator sends it again under the same item id and each worker answers it again
   * from memory, without a second run), then waits for the job loops to return before Redis closes.
   */
  async close(): Promise<void> {
    this.halt();
    await this.inboxes.close();
    await Promise.allSettled([...this.loops.values()]);
    await this.ledger.close();
  }
}
