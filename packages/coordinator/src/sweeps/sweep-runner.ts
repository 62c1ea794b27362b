import { randomBytes } from 'node:crypto';
import { SpecError } from '@facenet/core';
import type { EvaluationRecord, JobRecord, SweepRecord, SweepSpec, TrialRecord } from '@facenet/protocol';
import { JobStore } from '../job-store';
import { Metrics } from '../metrics';
import { stopReason, TrialScores } from './early-stopping';
import { SweepStore } from './sweep-store';
import { searchSize, trialParameters, trialSpec } from './trial-parameters';

export interface SweepRunnerDeps {
  sweeps: SweepStore;
  jobs: JobStore;
  evaluations: (jobId: string) => Promise<EvaluationRecord[]>;
  /** Admits and stores a job (SpecError when its spec is refused). */
  submit: (spec: unknown) => Promise<JobRecord>;
  cancel: (jobId: string) => Promise<unknown>;
  log: (line: string) => void;
  /** Gauges of each sweep's trials by state and its best score (Grafana's sweep panels). */
  metrics?: Pick<Metrics, 'sweepTrials' | 'sweepBest'>;
}

/** The objective of one evaluation, or undefined when the evaluator could not resolve it. */
export function scoreOf(e: EvaluationRecord, metric: SweepSpec['objective']['metric']): number | undefined {
  const v = metric === 'allPairsVal' ? e.allPairs?.valAt1e3 : e[metric];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** How long a completed trial waits for the evaluator's score of its last checkpoint (no evaluator: this long). */
export const FINAL_SCORE_WAIT_MS = 15 * 60_000;

/** Higher is better, whatever the goal. */
const oriented = (spec: SweepSpec, v: number) => (spec.objective.goal === 'maximize' ? v : -v);

export function newSweepRecord(spec: SweepSpec): SweepRecord {
  const now = new Date().toISOString();
  return { id: `sweep-${randomBytes(5).toString('hex')}`, spec, state: 'running', trials: [], createdAt: now, updatedAt: now };
}

/**
 * Drives every running sweep, a pass per call (the coordinator calls it on its timer): reads each
 * trial's job and evaluations, stops trials the early-stopping rule condemns (their jobs are
 * cancelled), launches trials while the budget allows, and completes the sweep when nothing runs
 * and nothing is left to launch. Everything it knows is in Redis, so a restarted coordinator
 * continues where the last one was; a trial whose spec is refused or whose job fails is recorded
 * and the sweep goes on.
 */
export class SweepRunner {
  private last = Date.now();

  constructor(private readonly d: SweepRunnerDeps) {}

  async tick(): Promise<void> {
    const now = Date.now();
    const elapsed = (now - this.last) / 1000;
    this.last = now;
    for (const id of await this.d.sweeps.runningIds()) {
      try {
        this.export(await this.d.sweeps.update(id, (r) => this.advance(r, elapsed)));
      } catch (err) {
        // One sweep's unreadable record does not stop the others.
        this.d.log(`[coordinator] sweep ${id}: ${(err as Error).message}`);
      }
    }
  }

  private export(s: SweepRecord): void {
    const m = this.d.metrics;
    if (!m) return;
    for (const state of ['running', 'completed', 'stopped', 'failed', 'cancelled'] as const)
      m.sweepTrials.set({ sweep_id: s.id, state }, s.trials.filter((t) => t.state === state).length);
    const scores = s.trials.flatMap((t) => (t.best ? [t.best.score] : []));
    if (scores.length)
      m.sweepBest.set({ sweep_id: s.id }, s.spec.objective.goal === 'maximize' ? Math.max(...scores) : Math.min(...scores));
  }

  private async advance(s: SweepRecord, elapsed: number): Promise<void> {
    if (s.state !== 'running') return;
    const spec = s.spec;
    for (const t of s.trials.filter((x) => (x.state === 'running' || x.awaitingFinalScore) && x.jobId)) await this.observe(s, t, elapsed);
    const scored = s.trials.map((t) => ({ index: t.index, scores: t.scores.map((v) => oriented(spec, v)) }));
    for (const t of s.trials.filter((x) => x.state === 'running' && x.jobId && !x.stopReason)) {
      const why = stopReason(
        spec.earlyStopping,
        scored[t.index] as TrialScores,
        scored.filter((o) => o.index !== t.index),
      );
      if (!why) continue;
      t.stopReason = why;
      this.d.log(`[coordinator] sweep ${s.id}: trial ${t.index} (job ${t.jobId}) stopped: ${why}`);
      await this.d
        .cancel(t.jobId as string)
        .catch((err: Error) => this.d.log(`[coordinator] sweep ${s.id}: cancel ${t.jobId}: ${err.message}`));
    }
    const running = s.trials.filter((t) => t.state === 'running').length;
    const limit = Math.min(spec.budget.maxTrials, searchSize(spec));
    const used = s.trials.reduce((n, t) => n + t.rankSeconds, 0);
    const withinBudget = spec.budget.rankHours === 0 || used < spec.budget.rankHours * 3600;
    for (let n = running; n < spec.budget.parallel && s.trials.length < limit && withinBudget; n++) await this.launch(s);
    if (!s.trials.some((t) => t.state === 'running' || t.awaitingFinalScore) && (s.trials.length >= limit || !withinBudget)) {
      s.state = 'completed';
      this.d.log(`[coordinator] sweep ${s.id}: completed, ${s.trials.length} trial(s)`);
    }
  }

  /** A trial's job as it stands: scores from its evaluations, rank-seconds while it runs, its end. */
  private async observe(s: SweepRecord, t: TrialRecord, elapsed: number): Promise<void> {
    let job: JobRecord;
    try {
      job = await this.d.jobs.get(t.jobId as string);
    } catch (err) {
      t.state = 'failed';
      t.error = `its job is gone: ${(err as Error).message}`;
      return;
    }
    const evals = [...(await this.d.evaluations(job.id))].sort((a, b) => a.step - b.step);
    t.scores = [];
    t.best = undefined;
    for (const e of evals) {
      const v = scoreOf(e, s.spec.objective.metric);
      if (v === undefined) continue;
      t.scores.push(v);
      if (!t.best || oriented(s.spec, v) > oriented(s.spec, t.best.score)) t.best = { score: v, step: e.step };
    }
    if (job.state === 'running') t.rankSeconds += elapsed * job.world.length;
    if (job.state === 'completed') {
      t.state = 'completed';
      // The evaluator scores the final checkpoint after the job ends: until it has, the trial's
      // best and the leaderboard would miss the score the whole run was for.
      const last = job.checkpoints[job.checkpoints.length - 1]?.step;
      const scored = last === undefined || !job.spec.evaluation.enabled || evals.some((e) => e.step === last);
      const waited = Date.now() - Date.parse(job.updatedAt);
      if (!scored && waited > FINAL_SCORE_WAIT_MS && t.awaitingFinalScore)
        this.d.log(
          `[coordinator] sweep ${s.id}: trial ${t.index}: no score of its last checkpoint (step ${last}) after ${FINAL_SCORE_WAIT_MS / 60_000} min; ranked on its earlier ones`,
        );
      t.awaitingFinalScore = !scored && waited <= FINAL_SCORE_WAIT_MS ? true : undefined;
    } else if (job.state === 'failed') {
      t.state = 'failed';
      t.error = job.error;
    } else if (job.state === 'cancelled') t.state = t.stopReason ? 'stopped' : 'cancelled';
  }

  private async launch(s: SweepRecord): Promise<void> {
    const index = s.trials.length;
    // What adaptive search learns from: finished trials (completed or stopped early) with a score.
    const observations = s.trials
      .filter((t) => (t.state === 'completed' || t.state === 'stopped') && t.best)
      .map((t) => ({ params: t.params, score: oriented(s.spec, (t.best as { score: number }).score) }));
    const params = trialParameters(s.spec, index, observations);
    const body = trialSpec(s.spec, params);
    body.name = `${s.spec.name ?? s.id} #${index}`;
    const t: TrialRecord = { index, params, state: 'running', scores: [], rankSeconds: 0 };
    s.trials.push(t);
    try {
      const job = await this.d.submit(body);
      t.jobId = job.id;
      await this.d.jobs.update(job.id, (j) => void (j.sweep = { id: s.id, trial: index }));
      this.d.log(`[coordinator] sweep ${s.id}: trial ${index} started as job ${job.id}: ${JSON.stringify(params)}`);
    } catch (err) {
      t.state = 'failed';
      t.error =
        err instanceof SpecError ? `spec refused: ${err.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}` : (err as Error).message;
      this.d.log(`[coordinator] sweep ${s.id}: trial ${index} not started: ${t.error}`);
    }
  }

  /** Cancels a sweep and every trial still running. */
  async cancelSweep(id: string): Promise<SweepRecord> {
    return this.d.sweeps.update(id, async (s) => {
      if (s.state !== 'running') return;
      s.state = 'cancelled';
      for (const t of s.trials.filter((x) => x.state === 'running')) {
        if (t.jobId) await this.d.cancel(t.jobId).catch(() => undefined);
        t.state = 'cancelled';
      }
    });
  }
}

/** The sweep as the API shows it: trials, the leaderboard (best first), and the best trial's best checkpoint. */
export async function sweepView(s: SweepRecord, jobs: JobStore) {
  const leaderboard = s.trials
    .filter((t): t is TrialRecord & { best: { score: number; step: number } } => !!t.best)
    .sort((a, b) => oriented(s.spec, b.best.score) - oriented(s.spec, a.best.score));
  const top = leaderboard[0];
  let checkpoint: { step: number; dir: string } | null = null;
  if (top?.jobId) {
    const job = await jobs.get(top.jobId).catch(() => undefined);
    checkpoint = job?.checkpoints.find((c) => c.step === top.best.step) ?? null;
  }
  return {
    id: s.id,
    name: s.spec.name,
    state: s.state,
    objective: s.spec.objective,
    budget: { ...s.spec.budget, rankHoursUsed: s.trials.reduce((n, t) => n + t.rankSeconds, 0) / 3600 },
    trials: s.trials,
    leaderboard: leaderboard.map((t) => ({
      index: t.index,
      jobId: t.jobId,
      score: t.best.score,
      step: t.best.step,
      params: t.params,
      state: t.state,
    })),
    best: top ? { trial: top.index, jobId: top.jobId, score: top.best.score, step: top.best.step, checkpoint } : null,
    spec: s.spec,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
  };
}
