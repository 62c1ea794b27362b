/**
 * Ablation: uniform P x K batches with online semi-hard selection only, against the miner with
 * the curriculum; same seed, steps, model and data, one cluster (facenet up --workers 2, miner
 * on), jobs run one after the other. Scores each final checkpoint on identities it never saw:
 *  - orl: 10 held-out people, all pairs, 10 folds;
 *  - lfw: pairs of LFW folds 8-9 (their people excluded from training), 2 folds.
 *
 *   npx tsx bench/mining-ablation.ts [--dataset orl|lfw] [--steps 300] [--size 48] [--P 10] [--K 10]
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { JobView, sourceFromSpec, trainingSource } from '@facenet/protocol';
import { deleteKeysUnder } from '@facenet/service-kit';
import { apiClient } from './lib/api-client';

/** What GET /v1/jobs/:id/plan shows of the miner's last plan (the fields this bench reports). */
interface MiningPlanView {
  version: number;
  step: number;
  stats: { easy: number; semiHard: number; hard: number; minedFraction: number };
  timings: { embedMs: number; mineMs: number };
}

const { values } = parseArgs({
  options: {
    dataset: { type: 'string', default: 'orl' },
    steps: { type: 'string', default: '300' },
    size: { type: 'string', default: '48' },
    P: { type: 'string', default: '10' },
    K: { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
  },
});
const DATA = resolve(__dirname, '..', '..', 'shared', 'data');
const CLI = resolve(__dirname, '..', 'packages', 'cli', 'dist', 'main.js');

async function main(): Promise<void> {
  const core = await import('@facenet/core');
  await core.selectBackend({ log: null });
  const lfw = values.dataset === 'lfw';
  const pairsFile = lfw ? core.readPairsFile(join(DATA, 'lfw', 'pairs.txt')) : undefined;
  const evalPairs = pairsFile?.pairs.filter((p) => p.fold >= 7); // folds 8-9, 0-based 7-8
  const exclude = evalPairs ? [...new Set(evalPairs.flatMap((p) => [p.a.name, p.b.name]))] : [];
  const dataset = lfw
    ? { kind: 'folder', path: join(DATA, 'lfw', 'images'), cropFraction: 0.5, exclude }
    : { kind: 'folder', path: join(DATA, 'orl') };
  const base = {
    dataset,
    holdout: lfw ? 0 : 10,
    worldSize: 2,
    checksumEvery: 0,
    train: {
      model: { architecture: 'tiny', imageSize: Number(values.size) },
      batch: { P: Number(values.P), K: Number(values.K) },
      virtualShards: 2,
      optimizer: { name: 'adam', learningRate: 0.003 },
      steps: Number(values.steps),
      checkpointEvery: Math.max(1, Math.round(Number(values.steps) / 10)),
      seed: Number(values.seed),
    },
  };
  const arms = {
    uniform: { ...base, curriculum: { enabled: false } },
    curriculum: {
      ...base,
      curriculum: {
        enabled: true,
        rampSteps: Math.round(Number(values.steps) / 3),
        hardnessRampSteps: Number(values.steps),
        floorUntilStep: Math.round(Number(values.steps) / 2),
      },
    },
  };
  const dir = mkdtempSync(join(tmpdir(), 'facenet-ablation-'));
  const proc: ChildProcess = spawn(
    process.execPath,
    [CLI, 'up', '--workers', '2', '--port', '0', '--prefix', `fnablation-${process.pid}`, '--checkpoint-root', dir, '--json'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const results: Record<string, unknown> = {};
  try {
    const url = await new Promise<string>((res) =>
      createInterface({ input: proc.stdout! }).on('line', (l) => {
        if (l.startsWith('{"event":"ready"')) res(JSON.parse(l).url);
      }),
    );
    const call = apiClient(url);
    while ((await call<unknown[]>('GET', '/v1/workers')).length < 2 || !(await call('GET', '/v1/miner')))
      await new Promise((r) => setTimeout(r, 300));
    for (const [name, spec] of Object.entries(arms)) {
      const t0 = performance.now();
      const job = await call<JobView>('POST', '/v1/jobs', spec);
      let j: JobView;
      for (;;) {
        j = await call<JobView>('GET', `/v1/jobs/${job.id}`);
        if (['completed', 'failed'].includes(j.state)) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      if (j.state !== 'completed') throw new Error(`${name}: ${j.error}`);
      const seconds = (performance.now() - t0) / 1000;
      const { model } = await core.loadModel((j.lastCheckpoint as { dir: string }).dir);
      let report;
      if (lfw) {
        const keys: string[] = [];
        const idx = new Map<string, number>();
        const at = (ref: { name: string; index: number }) => {
          const k = core.lfwImagePath(join(DATA, 'lfw', 'images'), ref);
          if (!idx.has(k)) {
            idx.set(k, keys.length);
            keys.push(k);
          }
          return idx.get(k) as number;
        };
        const set = {
          keys,
          pairs: evalPairs!.map((p) => [at(p.a), at(p.b)] as [number, number]),
          same: evalPairs!.map((p) => p.same),
          fold: evalPairs!.map((p) => p.fold),
        };
        report = (await core.evaluatePairs(model, new core.FilesSource(keys, 0.5), set)).report;
      } else {
        const source = sourceFromSpec(dataset as never);
        const held = trainingSource(source, 10, Number(values.seed)).holdout;
        report = (await core.evaluatePairs(model, source, core.holdoutPairs(source.index, held, { seed: Number(values.seed) }))).report;
      }
      model.dispose();
      const history = await call<{ loss: number; planVersion?: number }[]>('GET', `/v1/jobs/${job.id}/history?limit=1000`);
      const plan = await call<MiningPlanView | null>('GET', `/v1/jobs/${job.id}/plan`);
      results[name] = {
        accuracy: report.accuracy,
        accuracyStd: report.accuracyStd,
        val: report.val,
        valStd: report.valStd,
        far: report.far,
        auc: report.auc,
        pairs: report.pairs,
        folds: report.folds,
        trainSeconds: seconds,
        finalLoss: history.at(-1)?.loss,
        stepsWithPlan: history.filter((h) => h.planVersion !== undefined).length,
        lastPlan: plan && {
          version: plan.version,
          step: plan.step,
          stats: { easy: plan.stats.easy, semiHard: plan.stats.semiHard, hard: plan.stats.hard, minedFraction: plan.stats.minedFraction },
          embedMs: plan.timings.embedMs,
          mineMs: plan.timings.mineMs,
        },
      };
      process.stderr.write(`${name}: ${JSON.stringify(results[name])}\n`);
    }
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
    await deleteKeysUnder(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', `fnablation-${process.pid}`);
  }
  process.stdout.write(
    `${JSON.stringify({ benchmark: 'mining-ablation', dataset: values.dataset, config: base, arms: results }, null, 2)}\n`,
  );
}

void main();
