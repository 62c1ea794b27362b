/**
 * Short recipe runs as a sweep through the coordinator's API (POST /v1/sweeps), one JSON row per
 * trial: a base job spec, a list of arms (overrides deep-merged into it) and seeds become a grid
 * sweep of two `variants` parameters (seed, then arm: each arm once per seed), run one trial at a
 * time with no early stopping, so every arm's learning curve is whole. Each row has the
 * evaluator's scores of every checkpoint, the wall time and the faces seen.
 *
 *   npx tsx bench/recipe-runs.ts bench/sweeps/lfw-short-runs.yaml [--workers 2] [--only NAME,NAME] [--seeds 1,2,3] [--api URL]
 *
 * Without --api it starts a private `facenet up` cluster (W workers, the miner, the evaluator) and
 * stops it afterwards; with --api it is a client of that cluster (--token or $FACENET_TOKEN).
 * A sweep file:
 *   base: examples/lfw-recipe.yaml      # a job spec, paths relative to the working directory
 *   set: { train: { steps: 150 } }      # applied to every arm
 *   seeds: [1]                          # each arm runs once per seed (train.seed and model.seed)
 *   arms: [{ name: triplet, set: {} }, { name: K8, set: { train: { batch: { P: 45, K: 8 } } } }]
 * Rows go to stdout as the sweep ends (JSON lines); progress goes to stderr. `facenet sweeps show
 * <id>` shows the same sweep, and the status page draws it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { deepMerge } from '@facenet/coordinator';
import type { EvaluationRecord, JobView, SweepSpec, TrialRecord } from '@facenet/protocol';
import { deleteKeysUnder } from '@facenet/service-kit';
import { apiClient } from './lib/api-client';

type Obj = Record<string, unknown>;
interface RecipeFile {
  base: string;
  set?: Obj;
  seeds?: number[];
  arms: { name: string; set?: Obj }[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    workers: { type: 'string', default: '2' },
    only: { type: 'string' },
    seeds: { type: 'string' },
    api: { type: 'string' },
    token: { type: 'string', default: process.env.FACENET_TOKEN },
  },
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);

/** `facenet up` on a free port under its own Redis prefix and folder; stop() removes all three. */
async function startCluster(workers: number): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'facenet-recipes-'));
  const prefix = `fnrecipes-${process.pid}`;
  const cli = resolve(__dirname, '..', 'packages', 'cli', 'dist', 'main.js');
  const args = ['up', '--workers', String(workers), '--port', '0', '--prefix', prefix, '--json'];
  args.push('--checkpoint-root', join(dir, 'jobs'), '--report-root', join(dir, 'reports'));
  const proc = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((res) =>
    createInterface({ input: proc.stdout }).on('line', (l) => {
      if (l.startsWith('{"event":"ready"')) res((JSON.parse(l) as { url: string }).url);
    }),
  );
  while (((await (await fetch(`${url}/v1/workers`)).json()) as unknown[]).length < workers) await sleep(300);
  return {
    url,
    stop: async () => {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
      await deleteKeysUnder(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix);
    },
  };
}

/** The recipe file as a grid sweep: seed-major, arm-minor, as the runs were always ordered. */
function recipeSweep(file: RecipeFile, o: { workers: number; seeds?: number[]; only?: string[] }): Obj {
  const base = deepMerge(deepMerge(parseYaml(readFileSync(file.base, 'utf8')) as Obj, file.set ?? {}), { worldSize: o.workers });
  const seeds = o.seeds ?? file.seeds ?? [1];
  const arms = file.arms.filter((a) => !o.only || o.only.includes(a.name));
  if (!arms.length) throw new Error(`no arm left (--only ${o.only?.join(',')})`);
  return {
    name: `recipe runs: ${positionals[0]}`,
    base,
    parameters: [
      { name: 'seed', variants: seeds.map((s) => ({ name: String(s), set: { train: { seed: s, model: { seed: s } } } })) },
      { name: 'arm', variants: arms.map((a) => ({ name: a.name, set: a.set ?? {} })) },
    ],
    search: { kind: 'grid' },
    objective: { metric: 'auc', goal: 'maximize' },
    budget: { maxTrials: seeds.length * arms.length, parallel: 1 },
    earlyStopping: { rule: 'none' },
  } satisfies Partial<Record<keyof SweepSpec, unknown>>;
}

async function main(): Promise<void> {
  if (!positionals[0]) throw new Error('usage: recipe-runs.ts RECIPES.yaml [--api URL]');
  const file = parseYaml(readFileSync(positionals[0], 'utf8')) as RecipeFile;
  const workers = Number(values.workers);
  const sweep = recipeSweep(file, { workers, seeds: values.seeds?.split(',').map(Number), only: values.only?.split(',') });

  const cluster = values.api ? undefined : await startCluster(workers);
  const url = values.api ?? (cluster as { url: string }).url;
  const call = apiClient(url, values.token);
  try {
    let s = await call<{ id: string; state: string; trials: TrialRecord[] }>('POST', '/v1/sweeps', sweep);
    process.stderr.write(`[recipes] sweep ${s.id}: ${(sweep.budget as { maxTrials: number }).maxTrials} trial(s) at ${url}\n`);
    let last = '';
    while (s.state === 'running') {
      await sleep(5000);
      s = await call('GET', `/v1/sweeps/${s.id}`);
      const now = s.trials.map((t) => `${t.params.arm}/s${t.params.seed}:${t.state}`).join(' ');
      if (now !== last) process.stderr.write(`[recipes] ${now}\n`);
      last = now;
    }
    for (const t of s.trials) {
      if (t.state !== 'completed' || !t.jobId) {
        process.stderr.write(`[recipes] ${t.params.arm} seed ${t.params.seed}: ${t.state} ${t.error ?? ''}\n`);
        continue;
      }
      const row = await trialRow(call, t);
      process.stdout.write(`${JSON.stringify(row)}\n`);
      const f = row.final;
      process.stderr.write(
        `[recipes] ${row.arm} seed ${row.seed}: ${f ? `acc ${(f.accuracy * 100).toFixed(1)}% AUC ${f.auc.toFixed(3)} VAL ${(f.val * 100).toFixed(1)}%` : 'no evaluation'} in ${row.trainSeconds} s\n`,
      );
    }
  } finally {
    await cluster?.stop();
  }
}

/** One trial's row: its final scores (waiting for the evaluator's last), curve, wall time, faces seen. */
async function trialRow(call: <T>(method: string, path: string) => Promise<T>, t: TrialRecord) {
  const j = await call<JobView>('GET', `/v1/jobs/${t.jobId}`);
  const history = await call<{ step: number; images: number; loss: number; rolledBack?: boolean }[]>(
    'GET',
    `/v1/jobs/${t.jobId}/history?limit=1000`,
  );
  const last = j.lastCheckpoint?.step as number;
  let evals: EvaluationRecord[] = [];
  for (const end = Date.now() + 20 * 60_000; Date.now() < end; await sleep(2000)) {
    evals = await call('GET', `/v1/jobs/${t.jobId}/evaluations`);
    if (evals.some((e) => e.step === last)) break;
  }
  const final = evals.find((e) => e.step === last);
  const arm = String(t.params.arm);
  return {
    arm,
    seed: Number(t.params.seed),
    jobId: t.jobId,
    steps: last,
    // From the job's creation to its completion (trials run one at a time).
    trainSeconds: Math.round((Date.parse(j.updatedAt) - Date.parse(j.createdAt)) / 1000),
    rankSeconds: Math.round(t.rankSeconds),
    // Faces seen: steps x the mean batch of the last 1,000 steps (all of them in a short run).
    imagesSeen: Math.round(mean(history.filter((h) => !h.rolledBack).map((h) => h.images)) * last),
    finalLoss: history.at(-1)?.loss,
    final: final && {
      accuracy: final.accuracy,
      accuracyStd: final.accuracyStd,
      val: final.val,
      far: final.far,
      auc: final.auc,
      pairs: final.pairs,
      allPairs: final.allPairs,
    },
    curve: evals.map((e) => ({ step: e.step, accuracy: e.accuracy, val: e.val, auc: e.auc, allPairsValAt1e3: e.allPairs?.valAt1e3 })),
    spec: j.spec,
  };
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
