/**
 * What early stopping saved in a finished sweep, from the API: each trial's parameters, steps run,
 * rank-hours, best and final scores; the rank-hours the sweep used against those it would have
 * used had every trial run to its end (a stopped trial's rank-seconds per step, times its steps).
 * Prints JSON, then the trials as a Markdown table.
 *
 *   npx tsx bench/sweep-report.ts <sweep id> [--api http://127.0.0.1:8080] [--token T]
 */
import { parseArgs } from 'node:util';
import type { EvaluationRecord, JobView, TrialRecord } from '@facenet/protocol';
import { apiClient } from './lib/api-client';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { api: { type: 'string', default: 'http://127.0.0.1:8080' }, token: { type: 'string', default: process.env.FACENET_TOKEN } },
});

interface SweepView {
  id: string;
  name?: string;
  state: string;
  objective: { metric: 'val' | 'auc' | 'accuracy' | 'allPairsVal'; goal: string };
  trials: TrialRecord[];
  best: { trial: number; score: number; step: number } | null;
}

const round = (x: number, d = 4) => Math.round(x * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const id = positionals[0];
  if (!id) throw new Error('usage: sweep-report.ts <sweep id> [--api URL]');
  const call = apiClient(values.api, values.token);
  const sweep = await call<SweepView>('GET', `/v1/sweeps/${id}`);
  const rows = [];
  for (const t of sweep.trials) {
    if (!t.jobId) continue;
    const job = await call<JobView>('GET', `/v1/jobs/${t.jobId}`);
    const evals = await call<EvaluationRecord[]>('GET', `/v1/jobs/${t.jobId}/evaluations`);
    const last = evals.filter((e) => e.step <= job.step).sort((a, b) => b.step - a.step)[0];
    rows.push({
      trial: t.index,
      state: t.state,
      params: t.params,
      steps: job.step,
      of: job.steps,
      rankHours: t.rankSeconds / 3600,
      // Had it run on: the same rank-seconds per step for the steps it did not run.
      rankHoursToEnd: job.step > 0 ? ((t.rankSeconds / job.step) * job.steps) / 3600 : 0,
      best: t.best ?? null,
      last: last && { step: last.step, accuracy: last.accuracy, auc: last.auc, val: last.val },
      stopReason: t.stopReason ?? null,
    });
  }
  const used = rows.reduce((n, r) => n + r.rankHours, 0);
  const toEnd = rows.reduce((n, r) => n + r.rankHoursToEnd, 0);
  const report = {
    benchmark: 'sweep-report',
    sweep: sweep.id,
    name: sweep.name,
    state: sweep.state,
    objective: sweep.objective,
    best: sweep.best,
    rankHoursUsed: round(used),
    rankHoursIfEveryTrialRanToTheEnd: round(toEnd),
    saved: round(1 - used / toEnd, 3),
    trials: rows,
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n\n`);
  process.stdout.write(
    `| trial | parameters | state | steps | rank-h | best ${sweep.objective.metric} (step) | last: accuracy / AUC |\n|---|---|---|---|---|---|---|\n`,
  );
  for (const r of rows)
    process.stdout.write(
      `| ${r.trial} | ${Object.entries(r.params)
        .map(([k, v]) => `${k.split('.').pop()} ${typeof v === 'number' ? Number(v.toPrecision(3)) : JSON.stringify(v)}`)
        .join(
          ', ',
        )} | ${r.state} | ${r.steps}/${r.of} | ${r.rankHours.toFixed(3)} | ${r.best ? `${r.best.score.toFixed(4)} (${r.best.step})` : '-'} | ${r.last ? `${(r.last.accuracy * 100).toFixed(1)}% / ${r.last.auc.toFixed(3)} (step ${r.last.step})` : '-'} |\n`,
    );
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
