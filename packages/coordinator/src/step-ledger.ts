import { lossWeightsAt } from '@facenet/core';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import {
  bestEvaluation,
  CheckpointEvent,
  JobRecord,
  redisKeys,
  ShardJobResult,
  StepRecord,
  evaluationRecordSchema,
  parseStoredList,
} from '@facenet/protocol';
import { logRedisErrors } from '@facenet/service-kit';
import { checkpointsToDelete, deleteCheckpoints } from './checkpoint-retention';
import { JobStore } from './job-store';
import { Metrics } from './metrics';
import { PlanSwitch } from './plan-lookup';

/** The mining plan a step was planned with, and the switch to record when it commits. */
export interface PlannedStep {
  mining?: { version: number; step: number };
  switchTo?: PlanSwitch;
}

/** Checkpoint events of one job left waiting for the miner; older ones are dropped. */
const WAITING_EVENTS_KEPT = 3;

/**
 * Where steps become history: the job record (step, the last ten steps in brief, checkpoints,
 * plan switches) with each step's full record appended to the job's history list, the metrics, the checkpoint events for the miner's and the evaluator's queues,
 * and the job's checkpoint retention (keepLast), applied after each checkpoint.
 */
export class StepLedger {
  private readonly keys: ReturnType<typeof redisKeys>;
  /** The checkpoint-event queues (miner, evaluator), made on first use. */
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly redis: IORedis,
    private readonly store: JobStore,
    private readonly metrics: Metrics,
    prefix: string,
    private readonly log: (line: string) => void,
    private readonly checkpointDir: (jobId: string) => string,
  ) {
    this.keys = redisKeys(prefix);
  }

  /** Records step job.step + 1 as done, from its ranks' results, and announces its checkpoint. */
  async commit(
    job: JobRecord,
    results: ShardJobResult[],
    stepMs: number,
    planned: PlannedStep,
    extra: Partial<StepRecord>,
  ): Promise<JobRecord> {
    const s = job.step;
    const done = s + 1;
    const r0 = results.find((r) => r.rank === 0) ?? (results[0] as ShardJobResult);
    const checkpoint = results.find((r) => r.checkpoint)?.checkpoint;
    const { mining, switchTo } = planned;
    const record: StepRecord = {
      ...r0.stats,
      step: done,
      generation: job.generation,
      stepMs,
      imagesPerSecond: stepMs > 0 ? r0.stats.images / (stepMs / 1000) : 0,
      timings: results.map((r) => r.timings),
      planVersion: mining?.version,
      minerLag: mining ? s - mining.step : undefined,
      ...(done <= job.highWater ? { replay: true } : {}),
      ...extra,
    };
    for (const sk of results.flatMap((r) => r.skipped))
      this.log(`[coordinator] job ${job.id} step ${done}: skipped ${sk.key}: ${sk.reason}`);
    const updated = await this.store.update(
      job.id,
      (j) => {
        j.step = done;
        j.highWater = Math.max(j.highWater ?? 0, done);
        // Kept as a count, so judging a job that learns nothing reads no history.
        const tripletsDue = lossWeightsAt(j.train.classification, s).triplet > 0;
        j.stepsWithoutTriplets = tripletsDue && record.triplets === 0 ? (j.stepsWithoutTriplets ?? 0) + 1 : 0;
        if (switchTo) j.planSwitches = [...j.planSwitches.filter((p) => p.fromStep < s), switchTo];
        j.last = record;
        if (checkpoint) {
          j.checkpoints.push({ step: done, dir: checkpoint, createdAt: new Date().toISOString() });
          j.restoreFrom = checkpoint;
        }
      },
      record,
    );
    this.observe(job.id, record, results, job.world.length);
    // Every SPILL_BATCH steps past HISTORY_CAP: the oldest records move to disk (one small gzip).
    await this.store
      .spillHistory(job.id)
      .catch((err: Error) =>
        this.log(`[coordinator] job ${job.id}: step history not moved to disk (Redis keeps it, bounded): ${err.message}`),
      );
    if (checkpoint) {
      await this.announceCheckpoint(job.id, done, checkpoint);
      await this.applyRetention(job.id);
    }
    return updated;
  }

  /**
   * Deletes the job's checkpoints its retention does not keep (the newest keepLast, the best by
   * VAL so far, and any another job restores from). The record drops them before the folders go.
   */
  private async applyRetention(jobId: string): Promise<void> {
    const job = await this.store.get(jobId);
    const keepLast = job.spec.retention?.keepLast ?? 0;
    if (keepLast <= 0) return;
    // An entry that does not parse is left out: at worst the best checkpoint is not known and the newest are kept.
    const evals = parseStoredList(
      evaluationRecordSchema,
      await this.redis.lrange(this.keys.evaluations(jobId), 0, -1),
      `evaluations of job ${jobId}`,
    );
    // Folders another job starts from (a fork), and this job's own start: an index, not every record.
    const pinned = await this.store.pinned();
    if (job.restoreFrom) pinned.add(job.restoreFrom);
    const doomed = checkpointsToDelete(job.checkpoints, keepLast, bestEvaluation(evals)?.step, pinned);
    if (doomed.length === 0) return;
    const gone = new Set(doomed.map((c) => c.dir));
    await this.store.update(jobId, (j) => {
      j.checkpoints = j.checkpoints.filter((c) => !gone.has(c.dir));
    });
    await deleteCheckpoints(doomed, this.checkpointDir(jobId), (l) => this.log(`[coordinator] job ${jobId}: ${l}`));
    this.log(
      `[coordinator] job ${jobId}: retention (keep last ${keepLast} and the best by VAL) deleted checkpoint(s) at step ${doomed.map((c) => c.step).join(', ')}`,
    );
  }

  /**
   * Puts a checkpoint event on the queues of the miner and of the evaluator. Events of the same
   * job still waiting beyond the newest few are dropped (both consumers take the newest anyway)
   * and their steps recorded as skipped, so the queues stay bounded when no consumer runs.
   */
  async announceCheckpoint(jobId: string, step: number, dir: string): Promise<void> {
    const event: CheckpointEvent = { jobId, step, dir };
    const consumers = [
      { name: this.keys.checkpointQueue, skipped: this.keys.skippedCheckpoints(jobId) },
      { name: this.keys.evaluationQueue, skipped: this.keys.skippedEvaluations(jobId) },
    ];
    for (const c of consumers) {
      let q = this.queues.get(c.name);
      if (!q) {
        this.queues.set(c.name, (q = new Queue(c.name, { connection: this.redis, prefix: this.keys.bull })));
        logRedisErrors(q, (l) => this.log(`[coordinator] checkpoint queue ${l}`));
      }
      await q.add('checkpoint', event, {
        jobId: `${jobId}-ckpt-${step}`,
        removeOnComplete: { count: 1000 },
        removeOnFail: { count: 1000 },
      });
      const waiting = (await q.getWaiting(0, 10_000)).filter((e) => (e.data as CheckpointEvent).jobId === jobId);
      const stale = waiting.sort((a, b) => (b.data as CheckpointEvent).step - (a.data as CheckpointEvent).step).slice(WAITING_EVENTS_KEPT);
      for (const e of stale) {
        await e.remove().catch(() => undefined); // taken by the consumer meanwhile: fine
        await this.redis.rpush(c.skipped, String((e.data as CheckpointEvent).step));
      }
    }
  }

  private observe(jobId: string, r: StepRecord, results: ShardJobResult[], world: number): void {
    const m = this.metrics;
    m.step.set({ job_id: jobId }, r.step);
    m.loss.set({ job_id: jobId }, r.loss);
    m.active.set({ job_id: jobId }, r.activeFraction);
    m.classificationLoss.set({ job_id: jobId }, r.classificationLoss ?? 0); // results of workers from before the option have none
    m.imagesPerSecond.set({ job_id: jobId }, r.imagesPerSecond);
    m.worldSize.set({ job_id: jobId }, world);
    if (r.minerLag !== undefined) m.minerLag.set({ job_id: jobId }, r.minerLag);
    for (const res of results) {
      for (const [phase, ms] of Object.entries(res.timings)) m.phase.observe({ job_id: jobId, phase: phase.replace(/Ms$/, '') }, ms / 1000);
      m.allreduceBytes.inc({ job_id: jobId }, res.allreduceBytes);
    }
  }

  async close(): Promise<void> {
    for (const q of this.queues.values()) await q.close().catch(() => undefined);
  }
}
