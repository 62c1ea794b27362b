/**
 * Distributed training throughput, all measured in one run on the same model and data:
 *  - plain: the model trained by Trainer in one process (no queues, no threads, no gRPC);
 *  - ceiling: two plain trainers in two processes at the same time, their images/s added: what
 *    this machine gives two ranks when nothing of ours (queues, ring, coordinator) is involved;
 *  - W=1 and W=2: the same job through `facenet up` (coordinator, BullMQ, compute thread, ring).
 * Reports images/s (median step after two warm-up steps), orchestration overhead of W=1 against
 * plain, scaling efficiency W=2 / (2 x W=1), W=2 as a fraction of the ceiling, and the per-rank
 * step-time breakdown.
 *
 *   npx tsx bench/distributed-throughput.ts [--model inception-small] [--size 64] [--P 18] [--K 10] [--steps 8]
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { deleteKeysUnder } from '@facenet/service-kit';
import type { JobView } from '@facenet/protocol';
import { apiClient } from './lib/api-client';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'inception-small' },
    size: { type: 'string', default: '64' },
    P: { type: 'string', default: '18' },
    K: { type: 'string', default: '10' },
    shards: { type: 'string', default: '2' },
    steps: { type: 'string', default: '8' },
    'plain-only': { type: 'boolean', default: false },
  },
});

const ORL = resolve(__dirname, '..', '..', 'shared', 'data', 'orl');
const CLI = resolve(__dirname, '..', 'packages', 'cli', 'dist', 'main.js');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const train = {
  model: { architecture: values.model, imageSize: Number(values.size) },
  batch: { P: Number(values.P), K: Number(values.K) },
  virtualShards: Number(values.shards),
  steps: Number(values.steps),
  seed: 1,
};

async function plain(): Promise<{ imagesPerSecond: number; stepSeconds: number[] }> {
  const core = await import('@facenet/core');
  await core.selectBackend({ log: null });
  const source = new core.FolderSource(ORL);
  const t = new core.Trainer(source, train as never);
  const times: number[] = [];
  let images = 0;
  let last = performance.now();
  await t.run({
    onStep: (r) => {
      const now = performance.now();
      times.push((now - last) / 1000);
      last = now;
      images = r.images;
    },
  });
  t.dispose();
  const steady = times.slice(2);
  return { imagesPerSecond: images / median(steady), stepSeconds: steady };
}

/** Two plain trainers in two processes at once (this script with --plain-only), images/s added. */
async function ceiling(): Promise<{ imagesPerSecond: number; each: number[] }> {
  const args = process.argv.slice(2).filter((a) => a !== '--plain-only');
  const runs = [0, 1].map(
    () =>
      new Promise<number>((res, rej) => {
        const child = spawn(process.execPath, [...process.execArgv, process.argv[1] as string, ...args, '--plain-only'], {
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) =>
          code === 0
            ? res((JSON.parse(out) as { imagesPerSecond: number }).imagesPerSecond)
            : rej(new Error(`plain trainer exited ${code}`)),
        );
      }),
  );
  const each = await Promise.all(runs);
  return { imagesPerSecond: each.reduce((a, b) => a + b, 0), each };
}

async function cluster(workers: number) {
  const dir = mkdtempSync(join(tmpdir(), 'facenet-bench-'));
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
      `fnbench-${process.pid}-${workers}`,
      '--checkpoint-root',
      dir,
      '--json',
    ],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  try {
    const url = await new Promise<string>((res) =>
      createInterface({ input: proc.stdout! }).on('line', (l) => {
        if (l.startsWith('{"event":"ready"')) res(JSON.parse(l).url);
      }),
    );
    const call = apiClient(url);
    while ((await call<unknown[]>('GET', '/v1/workers')).length < workers) await new Promise((r) => setTimeout(r, 200));
    const job = await call<JobView>('POST', '/v1/jobs', {
      dataset: { kind: 'folder', path: ORL },
      worldSize: workers,
      checksumEvery: 0,
      train: { ...train, checkpointEvery: 0 },
    });
    for (;;) {
      const j = await call<JobView>('GET', `/v1/jobs/${job.id}`);
      if (['completed', 'failed'].includes(j.state)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const history = (await call('GET', `/v1/jobs/${job.id}/history`)) as {
      images: number;
      stepMs: number;
      timings: Record<string, number>[];
    }[];
    const steady = history.slice(2);
    const phases = ['dataMs', 'computeMs', 'allreduceMs', 'optimizerMs', 'checkpointMs'];
    const breakdown = Array.from({ length: workers }, (_, rank) => {
      const row: Record<string, number> = {};
      for (const p of phases) row[p] = median(steady.map((h) => h.timings[rank]![p]!));
      // Idle per step (wall time minus this rank's phases), then the median: medians do not add.
      row.idleMs = median(steady.map((h) => h.stepMs - phases.reduce((a, p) => a + h.timings[rank]![p]!, 0)));
      return row;
    });
    return {
      imagesPerSecond: (steady[0]?.images ?? 0) / (median(steady.map((h) => h.stepMs)) / 1000),
      stepSeconds: steady.map((h) => h.stepMs / 1000),
      breakdown,
    };
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
    await deleteKeysUnder(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', `fnbench-${process.pid}-${workers}`);
  }
}

async function main(): Promise<void> {
  if (values['plain-only']) {
    process.stdout.write(JSON.stringify(await plain()));
    return;
  }
  const p = await plain();
  process.stderr.write(`plain ${p.imagesPerSecond.toFixed(1)} img/s\n`);
  const c = await ceiling();
  process.stderr.write(`ceiling (two plain trainers at once) ${c.imagesPerSecond.toFixed(1)} img/s\n`);
  const w1 = await cluster(1);
  process.stderr.write(`W=1 ${w1.imagesPerSecond.toFixed(1)} img/s\n`);
  const w2 = await cluster(2);
  process.stderr.write(`W=2 ${w2.imagesPerSecond.toFixed(1)} img/s\n`);
  process.stdout.write(
    `${JSON.stringify(
      {
        benchmark: 'distributed-throughput',
        train,
        plain: p,
        ceiling: c,
        w1,
        w2,
        overheadW1VsPlain: 1 - w1.imagesPerSecond / p.imagesPerSecond,
        scalingEfficiencyW2: w2.imagesPerSecond / (2 * w1.imagesPerSecond),
        ceilingVsTwoPlain: c.imagesPerSecond / (2 * p.imagesPerSecond),
        w2VsCeiling: w2.imagesPerSecond / c.imagesPerSecond,
      },
      null,
      2,
    )}\n`,
  );
}

void main();
