import { Job, Queue, QueueEvents } from 'bullmq';
import IORedis from 'ioredis';
import { join } from 'node:path';
import {
  FaceSource, MiningPlan, redisKeys, ShardJobData, ShardJobResult, shardJobId, sourceFromSpec, trainingSource, workerQueueName, WorkerInfo,
} from '@facenet/core';
import { JobRecord, StepRecord } from './job-record';
import { JobStore } from './job-store';
import { Membership } from './membership';
import { Metrics } from './metrics';
import { planStep } from './planner';

export interface DriverOptions {
  prefix: string;
  checkpointRoot: string;
  stepTimeoutMs: number;
  /** Faults tolerated at one step before the job fails. */
  maxFaultsPerStep: number;
  faultSettleMs: number;
  log: (line: string) => void;
}

class StepFault extends Error {}

/**
 * Runs jobs step by step: assigns idle workers to pending jobs, dispatches one shard job per
 * rank, waits for all of them, records the step, and on any fault abandons the generation and
 * restarts from the last checkpoint on the workers still alive. Only one step per job is in
 * flight; the next step's images are prefetched by the workers during the current one.
 */
export class JobDriver {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly queues = new Map<string, Queue<ShardJobData, ShardJobResult>>();
  private readonly events = new Map<string, QueueEvents>();
  private readonly sources = new Map<string, FaceSource>();
  private readonly loops = new Map<string, Promise<void>>();
  private readonly plans = new Map<string, MiningPlan | null>();
  private checkpointQueue: Queue | undefined;
  private stopping = false;

  constructor(
    private readonly redis: IORedis, private readonly store: JobStore, private readonly membership: Membership,
    private readonly metrics: Metrics, private readonly o: DriverOptions,
  ) {
    this.keys = redisKeys(o.prefix);
  }

  private queue(workerId: string): Queue<ShardJobData, ShardJobResult> {
    let q = this.queues.get(workerId);
    if (!q) {
      q = new Queue(workerQueueName(workerId), { connection: this.redis, prefix: this.keys.bull });
      this.queues.set(workerId, q);
    }
    return q;
  }

  private async queueEvents(workerId: string): Promise<QueueEvents> {
    let e = this.events.get(workerId);
    if (!e) {
      e = new QueueEvents(workerQueueName(workerId), { connection: this.redis.duplicate({ maxRetriesPerRequest: null }), prefix: this.keys.bull });
      this.events.set(workerId, e);
      await e.waitUntilReady();
    }
    return e;
  }

  private trainSource(job: JobRecord): FaceSource {
    let s = this.sources.get(job.id);
    if (!s) {
      s = trainingSource(sourceFromSpec(job.spec.dataset), job.spec.holdout, job.train.seed).train;
      this.sources.set(job.id, s);
    }
    return s;
  }

  private async loadPlan(jobId: string, version: number): Promise<MiningPlan | undefined> {
    const key = `${jobId}:${version}`;
    if (!this.plans.has(key)) {
      const raw = await this.redis.get(this.keys.plan(jobId, version));
      this.plans.set(key, raw ? (JSON.parse(raw) as MiningPlan) : null);
    }
    return this.plans.get(key) ?? undefined;
  }

  /**
   * The mining plan for step s: on a replayed step (below the high-water mark) the plan that
   * was in force then, so resumed runs reproduce; otherwise the newest plan whose checkpoint is
   * not ahead of s. No plan (miner down, slow, or off): uniform batches; a step never waits.
   */
  private async planFor(job: JobRecord, s: number): Promise<{ plan?: MiningPlan; switchTo?: JobRecord['planSwitches'][number] }> {
    if (!job.spec.curriculum.enabled) return {};
    const recorded = [...job.planSwitches].reverse().find((p) => p.fromStep <= s);
    const recordedPlan = recorded && (await this.loadPlan(recorded.jobId, recorded.version));
    if (s < job.highWater) return { plan: recordedPlan };
    let newest: MiningPlan | undefined;
    try {
      for (const v of await this.redis.zrevrange(this.keys.plans(job.id), '0', '9')) {
        const p = await this.loadPlan(job.id, Number(v));
        if (p && p.step <= s) {
          newest = p;
          break;
        }
      }
    } catch (err) {
      this.o.log(`[coordinator] job ${job.id}: cannot read mining plans (${(err as Error).message}); planning uniformly`);
    }
    if (!newest) return { plan: recordedPlan };
    const switched = !recorded || recorded.jobId !== job.id || recorded.version !== newest.version;
    return { plan: newest, switchTo: switched ? { fromStep: s, jobId: job.id, version: newest.version } : undefined };
  }

  checkpointDir(jobId: string): string {
    return join(this.o.checkpointRoot, jobId);
  }

  /** One scheduling pass: start pending jobs on idle workers, drive running ones. */
  async tick(): Promise<void> {
    if (this.stopping) return;
    const jobs = await this.store.list();
    const alive = await this.membership.alive();
    const busy = new Set(jobs.filter((j) => j.state === 'running').flatMap((j) => j.world.map((w) => w.workerId)));
    for (const job of jobs) {
      if (job.state === 'pending') {
        const idle = alive.filter((w) => !busy.has(w.id));
        if (idle.length < job.spec.worldSize) continue;
        const world = idle.slice(0, job.spec.worldSize);
        world.forEach((w) => busy.add(w.id));
        await this.store.update(job.id, (j) => {
          j.state = 'running';
          j.generation++;
          j.world = world.map((w) => ({ workerId: w.id, address: w.address }));
        });
        this.o.log(`[coordinator] job ${job.id}: running on ${world.length} worker(s), generation ${job.generation + 1}, from step ${job.step}`);
      }
    }
    for (const job of await this.store.list()) {
      if (job.state === 'running' && !this.loops.has(job.id)) {
        const loop = this.drive(job.id).catch((err: Error) => this.o.log(`[coordinator] job ${job.id}: driver error: ${err.message}`)).finally(() => this.loops.delete(job.id));
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
        await this.store.update(id, (j) => (j.state = request === 'pause' ? 'paused' : 'cancelled'));
        this.o.log(`[coordinator] job ${id}: ${request === 'pause' ? 'paused' : 'cancelled'} at step ${job.step}`);
        return;
      }
      if (job.step >= job.train.steps) {
        await this.store.update(id, (j) => (j.state = 'completed'));
        this.o.log(`[coordinator] job ${id}: completed ${job.step} steps`);
        return;
      }
      try {
        await this.runStep(job);
      } catch (err) {
        if (this.stopping) return;
        if ((await this.store.get(id)).state !== 'running') return; // failed for good (e.g. checksum)
        await this.fault(job, (err as Error).message);
      }
    }
  }

  private async waitForAll(job: JobRecord, jobs: Job<ShardJobData, ShardJobResult>[]): Promise<ShardJobResult[]> {
    const ids = job.world.map((w) => w.workerId);
    let watching = true;
    const watch = (async () => {
      while (watching) {
        await new Promise((r) => setTimeout(r, 1000));
        if (watching && !(await this.membership.isAlive(ids))) throw new StepFault('a worker of the ring stopped heartbeating');
      }
      return [] as ShardJobResult[];
    })();
    try {
      const all = Promise.all(jobs.map(async (j, r) => {
        const events = await this.queueEvents(ids[r] as string);
        try {
          return (await j.waitUntilFinished(events, this.o.stepTimeoutMs)) as ShardJobResult;
        } catch (err) {
          throw new StepFault(`rank ${r} (${ids[r]}): ${(err as Error).message}`);
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
    const { plan: mining, switchTo } = await this.planFor(job, s);
    const plan = planStep(src, t, s, W, job.spec.curriculum, mining);
    // The next step's images are only prefetched: if its plan changes, the worker just decodes anew.
    const next = s + 1 < t.steps ? planStep(src, t, s + 1, W, job.spec.curriculum, mining) : undefined;
    const done = s + 1;
    const checkpointDue = (t.checkpointEvery > 0 && done % t.checkpointEvery === 0) || done === t.steps;
    const checksum = job.spec.checksumEvery > 0 && (done % job.spec.checksumEvery === 0 || done === t.steps);
    const world = job.world.map((w) => w.address);
    const t0 = performance.now();
    const jobs = await Promise.all(job.world.map((m, rank) => this.queue(m.workerId).add('step', {
      jobId: job.id, step: s, rank, generation: job.generation, world,
      shards: plan[rank] ?? [], prefetch: next ? { step: s + 1, shards: next[rank] ?? [] } : undefined,
      dataset: job.spec.dataset, train: t, restoreFrom: job.restoreFrom,
      checkpointDir: checkpointDue && rank === 0 ? this.checkpointDir(job.id) : undefined, checksum,
    }, { jobId: shardJobId(job.id, s, rank, job.generation), attempts: 1, removeOnComplete: { count: 200 }, removeOnFail: { count: 200 } })));
    const results = await this.waitForAll(job, jobs);
    const stepMs = performance.now() - t0;
    const r0 = results[0] as ShardJobResult;
    if (checksum) {
      const sums = new Set(results.map((r) => r.checksum));
      if (sums.size !== 1) {
        const detail = results.map((r) => `rank ${r.rank}: ${r.checksum?.slice(0, 12)}`).join(', ');
        await this.store.update(job.id, (j) => {
          j.state = 'failed';
          j.error = `weights diverged between ranks after step ${done} (${detail})`;
        });
        this.o.log(`[coordinator] job ${job.id}: FAILED: weights diverged between ranks after step ${done} (${detail})`);
        throw new Error('checksum mismatch');
      }
    }
    const record: StepRecord = {
      ...r0.stats, step: done, stepMs, imagesPerSecond: r0.stats.images / (stepMs / 1000), timings: results.map((r) => r.timings),
      planVersion: mining?.version, minerLag: mining ? s - mining.step : undefined,
    };
    const skipped = results.flatMap((r) => r.skipped);
    for (const sk of skipped) this.o.log(`[coordinator] job ${job.id} step ${done}: skipped ${sk.key}: ${sk.reason}`);
    await this.store.update(job.id, (j) => {
      j.step = done;
      j.highWater = Math.max(j.highWater ?? 0, done);
      if (switchTo) j.planSwitches = [...j.planSwitches.filter((p) => p.fromStep < s), switchTo];
      j.last = record;
      j.history.push(record);
      if (j.history.length > 200) j.history.splice(0, j.history.length - 200);
      if (r0.checkpoint) {
        j.checkpoints.push({ step: done, dir: r0.checkpoint, createdAt: new Date().toISOString() });
        j.restoreFrom = r0.checkpoint;
      }
    });
    this.observe(job.id, record, results, W);
    if (r0.checkpoint) {
      this.checkpointQueue ??= new Queue(this.keys.checkpointQueue, { connection: this.redis, prefix: this.keys.bull });
      await this.checkpointQueue.add('checkpoint', { jobId: job.id, step: done, dir: r0.checkpoint }, { jobId: `${job.id}-ckpt-${done}`, removeOnComplete: { count: 1000 } });
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
   * Abandons the current generation: workers abort its collectives, the job restarts from its
   * last checkpoint (or step 0) on the workers still alive, with the same virtual shards.
   */
  private async fault(job: JobRecord, reason: string): Promise<void> {
    this.metrics.faults.inc({ job: job.id });
    await this.redis.publish(this.keys.abortChannel, JSON.stringify({ jobId: job.id, generation: job.generation }));
    // A worker that just died still looks alive until its registration expires.
    await new Promise((r) => setTimeout(r, this.o.faultSettleMs));
    const alive = await this.membership.alive();
    const aliveIds = new Set(alive.map((w) => w.id));
    for (const m of job.world) {
      if (!aliveIds.has(m.workerId)) await this.forgetWorker(m.workerId);
    }
    const others = new Set((await this.store.list()).filter((j) => j.id !== job.id && j.state === 'running').flatMap((j) => j.world.map((w) => w.workerId)));
    const candidates: WorkerInfo[] = alive.filter((w) => !others.has(w.id)).slice(0, job.spec.worldSize);
    const updated = await this.store.update(job.id, (j) => {
      j.faults.push({ at: new Date().toISOString(), step: j.step, generation: j.generation, reason });
      const atThisStep = j.faults.filter((f) => f.step === j.step).length;
      const last = j.checkpoints[j.checkpoints.length - 1];
      j.generation++;
      j.step = last?.step ?? 0;
      j.restoreFrom = last?.dir ?? null;
      if (atThisStep > this.o.maxFaultsPerStep) {
        j.state = 'failed';
        j.error = `step ${j.step + 1} failed ${atThisStep} times; last: ${reason}`;
        j.world = [];
      } else if (candidates.length > 0) {
        j.world = candidates.map((w) => ({ workerId: w.id, address: w.address }));
      } else {
        j.state = 'pending';
        j.world = [];
      }
    });
    this.o.log(`[coordinator] job ${job.id}: fault at step ${job.step + 1} (${reason}); generation ${updated.generation}, ${updated.state === 'running' ? `restarting from step ${updated.step} on ${updated.world.length} worker(s)` : updated.state}`);
  }

  /** A dead worker's queue will never be served: drop it and its pending jobs. */
  private async forgetWorker(workerId: string): Promise<void> {
    const q = this.queue(workerId);
    await q.obliterate({ force: true }).catch(() => undefined);
    await q.close();
    this.queues.delete(workerId);
    await this.events.get(workerId)?.close();
    this.events.delete(workerId);
  }

  async close(): Promise<void> {
    this.stopping = true;
    for (const q of this.queues.values()) await q.close().catch(() => undefined);
    for (const e of this.events.values()) await e.close().catch(() => undefined);
    await this.checkpointQueue?.close().catch(() => undefined);
  }
}
