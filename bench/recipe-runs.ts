/**
 * Runs a sweep of training jobs through the distributed path and prints one JSON row per run:
 * a base job spec, a list of arms (overrides deep-merged into it) and seeds, all run one after
 * the other on one `facenet up` cluster (W workers, the miner, the evaluator). Each row has the
 * evaluator's scores of every checkpoint (the learning curve), the wall time and images seen.
 *
 *   npx tsx bench/recipe-runs.ts bench/sweeps/lfw-short-runs.yaml [--workers 2] [--only NAME,NAME] [--seeds 1,2,3]
 *
 * A sweep file:
 *   base: examples/lfw-recipe.yaml      # a job spec, paths relative to the working directory
 *   set: { train: { steps: 150 } }      # applied to every arm
 *   seeds: [1]                          # each arm runs once per seed (train.seed and model.seed)
 *   arms: [{ name: triplet, set: {} }, { name: K8, set: { train: { batch: { P: 45, K: 8 } } } }]
 * Rows go to stdout as they finish (JSON lines); progress goes to stderr.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { EvaluationRecord } from '@facenet/protocol';
import { deleteKeysUnder } from '@facenet/service-kit';

type Obj = Record<string, unknown>;
interface Sweep {
  base: string;
  set?: Obj;
  seeds?: number[];
  arms: { name: string; set?: Obj }[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { workers: { type: 'string', default: '2' }, only: { type: 'string' }, seeds: { type: 'string' } },
});
const CLI = resolve(__dirname, '..', 'packages', 'cli', 'dist', 'main.js');

const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** `over` merged into `base`: objects merge key by key, anything else replaces. */
function deepMerge(base: Obj, over: Obj = {}): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObj(v) && isObj(out[k]) ? deepMerge(out[k] as Obj, v) : v;
  return out;
}

async function main(): Promise<void> {
  if (!positionals[0]) throw new Error('usage: recipe-runs.ts SWEEP.yaml');
  const sweep = parseYaml(readFileSync(positionals[0], 'utf8')) as Sweep;
  const base = deepMerge(parseYaml(readFileSync(sweep.base, 'utf8')) as Obj, sweep.set);
  const seeds = values.seeds ? values.seeds.split(',').map(Number) : (sweep.seeds ?? [1]);
  const only = values.only?.split(',');
  const arms = sweep.arms.filter((a) => !only || only.includes(a.name));
  const workers = Number(values.workers);

  const dir = mkdtempSync(join(tmpdir(), 'facenet-sweep-'));
  const prefix = `fnsweep-${process.pid}`;
  const proc: ChildProcess = spawn(
    process.execPath,
    [
      CLI,
      'up',
      '--workers',
      String(workers),
      '--port',
      '0',
      '--prefix',
      prefix,
      '--checkpoint-root',
      join(dir, 'jobs'),
      '--report-root',
      join(dir, 'reports'),
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const url = await new Promise<string>((res) =>
      createInterface({ input: proc.stdout! }).on('line', (l) => {
        if (l.startsWith('{"event":"ready"')) res(JSON.parse(l).url);
      }),
    );
    const call = async (method: string, path: string, body?: unknown) =>
      (
        await fetch(url + path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body && JSON.stringify(body) })
      ).json();
    while ((await call('GET', '/v1/workers')).length < workers) await new Promise((r) => setTimeout(r, 300));
    for (const seed of seeds) {
      for (const arm of arms) {
        const spec = deepMerge(deepMerge(base, arm.set), {
          name: `${arm.name}-s${seed}`,
          worldSize: workers,
          train: { seed, model: { seed } },
        });
        const t0 = performance.now();
        const job = await call('POST', '/v1/jobs', spec);
        if (!job.id) throw new Error(`${arm.name}: ${JSON.stringify(job)}`);
        let j;
        for (;;) {
          j = await call('GET', `/v1/jobs/${job.id}`);
          if (['completed', 'failed', 'cancelled'].includes(j.state)) break;
          await new Promise((r) => setTimeout(r, 2000));
        }
        if (j.state !== 'completed') throw new Error(`${arm.name} seed ${seed}: ${j.state} ${j.error ?? ''}`);
        const trainSeconds = (performance.now() - t0) / 1000;
        const history: { step: number; images: number; loss: number; rolledBack?: boolean }[] = await call(
          'GET',
          `/v1/jobs/${job.id}/history`,
        );
        const last = j.lastCheckpoint.step as number;
        let evals: EvaluationRecord[] = [];
        for (const end = Date.now() + 20 * 60_000; Date.now() < end; await new Promise((r) => setTimeout(r, 2000))) {
          evals = await call('GET', `/v1/jobs/${job.id}/evaluations`);
          if (evals.some((e) => e.step === last)) break;
        }
        const final = evals.find((e) => e.step === last);
        const row = {
          arm: arm.name,
          seed,
          steps: last,
          trainSeconds: Math.round(trainSeconds),
          // The job keeps its last 200 step records: beyond that, faces seen = steps x their mean batch.
          imagesSeen: Math.round(mean(history.filter((h) => !h.rolledBack).map((h) => h.images)) * last),
          imagesSeenEstimated: history.length < last,
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
          spec: arm.set ?? {},
        };
        process.stdout.write(`${JSON.stringify(row)}\n`);
        process.stderr.write(
          `[sweep] ${arm.name} seed ${seed}: ${final ? `acc ${(final.accuracy * 100).toFixed(1)}% AUC ${final.auc.toFixed(3)} VAL ${(final.val * 100).toFixed(1)}%` : 'no evaluation'} in ${Math.round(trainSeconds)} s\n`,
        );
      }
    }
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
    await deleteKeysUnder(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix);
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
