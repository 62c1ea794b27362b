import { Job } from 'bullmq';
import IORedis from 'ioredis';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  allPairsValFar,
  checkpointName,
  embeddedRows,
  embedImages,
  EvaluationResult,
  loadModel,
  logChanges,
  scorePairs,
  withEmbedder,
  writeReportFile,
} from '@facenet/core';
import {
  bestEvaluation,
  CheckpointEvent,
  EvaluationRecord,
  JobRecord,
  redisKeys,
  jobDataSource,
  evaluationRecordSchema,
  jobRecordSchema,
  parseStored,
  parseStoredList,
} from '@facenet/protocol';
import { CheckpointConsumer, ConsumerState, DatasetIndexStore } from '@facenet/service-kit';
import { EvaluationSet, evaluationSetFor } from './evaluation-set';
import { compileEvaluatorOptions, CompiledEvaluatorOptions, EvaluatorOptions } from './evaluator-options';
import { createEvaluatorMetrics } from './metrics';

export type EvaluatorState = ConsumerState;

/** Jobs whose evaluation sets (and their decoded-image caches) the evaluator keeps between checkpoints. */
const MAX_HELD_SETS = 2;

/**
 * The evaluator process: consumes checkpoint events, scores each checkpoint on the job's
 * verification pairs (accuracy with thresholds from the other folds, VAL at the target FAR, AUC)
 * and appends the result to the job's evaluations in Redis. When it falls behind it evaluates
 * the newest checkpoint and skips the older ones waiting (named in Redis and counted). It is off
 * the training path: training never waits for it.
 */
export class EvaluatorService {
  readonly options: CompiledEvaluatorOptions;
  readonly metrics = createEvaluatorMetrics();
  private readonly consumer: CheckpointConsumer;
  private readonly redis: IORedis;
  private readonly keys: ReturnType<typeof redisKeys>;
  /** Evaluation sets by job (their sources keep decoded images for the job's next checkpoint). */
  private readonly sets = new Map<string, EvaluationSet>();
  private readonly indexes: DatasetIndexStore;
  private readonly engineLog = logChanges((l) => this.log(l));

  constructor(
    options: EvaluatorOptions = {},
    private readonly log: (line: string) => void = (l) => console.error(l),
  ) {
    this.options = compileEvaluatorOptions(options);
    const o = this.options;
    // Embedding takes a while (and blocks this thread where TensorFlow.js embeds), hence the long lock (lockMs).
    this.consumer = new CheckpointConsumer(
      {
        role: 'evaluator',
        redisUrl: o.redisUrl,
        prefix: o.prefix,
        id: o.id,
        queue: redisKeys(o.prefix).evaluationQueue,
        registrationKey: redisKeys(o.prefix).evaluator,
        heartbeatMs: o.heartbeatMs,
        lockMs: o.lockMs,
        metricsHost: o.metricsHost,
        metricsPort: o.metricsPort,
        registry: this.metrics.registry,
      },
      (job) => this.process(job),
      log,
    );
    this.redis = this.consumer.redis;
    this.indexes = new DatasetIndexStore(this.redis, this.options.prefix);
    this.keys = this.consumer.keys;
  }

  get state(): EvaluatorState {
    return this.consumer.state;
  }

  start(): Promise<string> {
    return this.consumer.start();
  }

  close(): Promise<void> {
    return this.consumer.close();
  }

  private async process(event: Job<CheckpointEvent>): Promise<{ skipped?: string; step?: number }> {
    const { jobId, step, dir } = event.data;
    if (await this.consumer.newerWaiting(event.data)) {
      await this.redis.rpush(this.keys.skippedEvaluations(jobId), String(step));
      this.metrics.skipped.inc({ job_id: jobId });
      this.log(`[evaluator] job ${jobId}: skipped checkpoint ${step} (a newer one is waiting)`);
      return { skipped: 'newer checkpoint waiting' };
    }
    if (!existsSync(dir)) return { skipped: 'checkpoint deleted (retention)' };
    const raw = await this.redis.get(this.keys.job(jobId));
    if (!raw) return { skipped: 'job gone' };
    const job = parseStored(jobRecordSchema, raw, `job ${jobId}`);
    if (!job.spec.evaluation.enabled) return { skipped: 'evaluation disabled' };
    if (!job.spec.evaluation.pairs && job.spec.holdout < 2) return { skipped: 'no held-out identities and no pairs file' };
    try {
      const record = await this.evaluate(job, step, dir);
      await this.redis.rpush(this.keys.evaluations(jobId), JSON.stringify(record));
      this.observe(record, await this.evaluations(jobId));
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      this.log(
        `[evaluator] job ${jobId}: step ${step}: accuracy ${pct(record.accuracy)}, VAL ${pct(record.val)} at FAR ${record.farTarget}, AUC ${record.auc.toFixed(3)} on ${record.pairs} ${record.set} pairs; over all pairs VAL ${record.allPairs?.valAt1e3 == null ? 'unresolved' : pct(record.allPairs.valAt1e3)} at FAR 1e-3 (${record.allPairs?.genuinePairs} genuine, ${record.allPairs?.impostorPairsScored} impostor pairs) (${record.seconds.toFixed(1)} s)`,
      );
      return { step };
    } catch (err) {
      this.metrics.failures.inc({ job_id: jobId });
      this.log(`[evaluator] job ${jobId}: checkpoint ${step} (${dir}) not evaluated: ${(err as Error).message}`);
      throw err;
    }
  }

  private async evaluate(job: JobRecord, step: number, dir: string): Promise<EvaluationRecord> {
    const t0 = performance.now();
    let es = this.sets.get(job.id);
    if (!es) {
      es = await evaluationSetFor(job.spec, job.train.seed, () => jobDataSource(job.spec.dataset, job.dataIndex, this.indexes));
      // The sets of the jobs evaluated last only: a finished job's decoded images are not kept.
      if (this.sets.size >= MAX_HELD_SETS) this.sets.delete(this.sets.keys().next().value as string);
      this.sets.set(job.id, es);
    }
    const { model } = await loadModel(dir);
    // One embedding per image for both scores: the listed pairs' images and every image of their people.
    const keys = [...new Set([...es.set.keys, ...es.everyImage.keys])];
    let embedded;
    try {
      embedded = await withEmbedder(model, { log: this.engineLog }, (e) => embedImages(e, es.source, keys));
    } finally {
      model.dispose();
    }
    const r = scorePairs(embeddedRows(embedded, keys, es.set.keys), es.set, { farTarget: job.spec.evaluation.farTarget });
    const every = embeddedRows(embedded, keys, es.everyImage.keys);
    const all = allPairsValFar(every.embeddings, every.dim, es.everyImage.labels, every.ok, { farTargets: [1e-3, 1e-4], seed: step });
    const e = r.report;
    const report = await this.writeReport(job, step, dir, es, r);
    return {
      jobId: job.id,
      step,
      checkpointDir: dir,
      set: es.kind,
      pairs: e.pairs,
      folds: e.folds,
      accuracy: e.accuracy,
      accuracyStd: e.accuracyStd,
      val: e.val,
      valStd: e.valStd,
      far: e.far,
      farTarget: e.farTarget,
      auc: e.auc,
      threshold: e.threshold,
      droppedPairs: r.droppedPairs,
      skippedImages: r.skipped.length,
      allPairs: {
        valAt1e3: all.points[0]?.val ?? null,
        valAt1e4: all.points[1]?.val ?? null,
        images: all.images,
        genuinePairs: all.genuinePairs,
        impostorPairs: all.impostorPairs,
        impostorPairsScored: all.impostorPairsScored,
      },
      seconds: (performance.now() - t0) / 1000,
      at: new Date().toISOString(),
      ...(report ? { report } : {}),
    };
  }

  /**
   * The checkpoint's HTML report (see writeReportFile) under reportRoot, as a path relative to
   * it; none without a reportRoot. A report that cannot be written is logged, never a failed evaluation.
   */
  private async writeReport(
    job: JobRecord,
    step: number,
    dir: string,
    es: EvaluationSet,
    r: EvaluationResult,
  ): Promise<string | undefined> {
    if (!this.options.reportRoot) return undefined;
    const relative = join(job.id, `${checkpointName(step)}.html`);
    try {
      await writeReportFile(join(this.options.reportRoot, relative), es.source, {
        title: `${job.name ?? job.id}: step ${step}`,
        result: r,
        keys: es.set.keys,
        facts: [
          ['job', `${job.id}${job.name ? ` (${job.name})` : ''}`],
          ['checkpoint', dir],
          ['step', String(step)],
          [
            'pairs',
            es.kind === 'pairs-file'
              ? `${job.spec.evaluation.pairs} folds ${job.spec.evaluation.folds?.join(',') ?? 'all'}`
              : `among ${job.spec.holdout} held-out identities`,
          ],
          ['unreadable images', `${r.skipped.length} (${r.droppedPairs} pairs dropped)`],
          ['written', new Date().toISOString()],
        ],
      });
      return relative;
    } catch (err) {
      this.log(`[evaluator] job ${job.id}: step ${step}: report not written: ${(err as Error).message}`);
      return undefined;
    }
  }

  private async evaluations(jobId: string): Promise<EvaluationRecord[]> {
    return parseStoredList(
      evaluationRecordSchema,
      await this.redis.lrange(this.keys.evaluations(jobId), 0, -1),
      `evaluations of job ${jobId}`,
      (err) => this.log(`[evaluator] ${err.message}; left out`),
    );
  }

  private observe(r: EvaluationRecord, all: EvaluationRecord[]): void {
    const l = { job_id: r.jobId };
    const m = this.metrics;
    m.val.set(l, r.val);
    m.far.set(l, r.far);
    m.accuracy.set(l, r.accuracy);
    m.auc.set(l, r.auc);
    m.threshold.set(l, r.threshold);
    m.step.set(l, r.step);
    m.bestVal.set(l, bestEvaluation(all)?.val ?? r.val);
    for (const [far, v] of [
      ['0.001', r.allPairs?.valAt1e3],
      ['0.0001', r.allPairs?.valAt1e4],
    ] as const) {
      if (v === null || v === undefined) m.valAllPairs.remove({ ...l, far });
      else m.valAllPairs.set({ ...l, far }, v);
    }
    m.seconds.observe(l, r.seconds);
    m.evaluations.inc(l);
  }
}
