/**
 * Ring against recursive doubling for small and mid-size vectors at several world sizes: the
 * measurement behind `DOUBLING_MAX_BYTES` (where 'auto' switches). Each rank is its own process
 * (bench/allreduce-bandwidth.ts's rank role, TCP data plane), all on this host; the two
 * algorithms alternate rep by rep so a noisy moment hits both alike.
 *
 *   npx tsx bench/allreduce-latency.ts [--worlds 4,8,16] [--sizes-kb 4,16,64,256,1024,4096,16384] [--reps 7] [--in-process]
 *
 * --in-process runs every rank's peer in this one process instead (one event loop does all the
 * ranks' work, so the time is the collective's CPU cost, without waiting for processes to be
 * scheduled; 40 reps).
 *
 * Prints JSON: per W and size the median milliseconds of each algorithm (the slowest rank's time
 * per collective), doubling / ring, and which 'auto' picks.
 */
import { fork, ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ask, Msg } from './child-ipc';
import { AllreducePeer, chooseAlgorithm, DOUBLING_MAX_BYTES } from '@facenet/worker';
import { ringPlace } from '@facenet/protocol';

const { values } = parseArgs({
  options: {
    worlds: { type: 'string', default: '4,8,16' },
    'sizes-kb': { type: 'string', default: '4,16,64,256,1024,4096,16384' },
    reps: { type: 'string', default: '7' },
    'in-process': { type: 'boolean', default: false },
  },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const ALGORITHMS = ['ring', 'recursive-doubling'] as const;

async function measureWorld(W: number, sizesKb: number[], reps: number): Promise<Record<string, unknown>[]> {
  const ranks = Array.from({ length: W }, () =>
    fork(join(__dirname, 'allreduce-bandwidth.ts'), ['--role', 'rank', '--transport', 'tcp'], { execArgv: ['--import', 'tsx'] }),
  );
  const addresses = await Promise.all(ranks.map((c) => new Promise<string>((r) => c.once('message', (m: Msg) => r(m.address as string)))));
  await Promise.all(ranks.map((c, rank) => ask(c, { cmd: 'world', world: addresses, rank }, 'ok')));
  const rows = [];
  let seq = 0;
  for (const kb of sizesKb) {
    const n = (kb * 1024) / 4;
    const times = new Map<string, number[]>(ALGORITHMS.map((a) => [a, []]));
    let correct = true;
    for (let rep = 0; rep <= reps; rep++) {
      for (const algorithm of ALGORITHMS) {
        const id = `lat/${seq++}/0`;
        const done = await Promise.all(ranks.map((c) => ask(c, { cmd: 'run', id, n, algorithm }, 'done')));
        correct &&= done.every((d) => d.correct === true);
        if (rep > 0) times.get(algorithm)?.push(1000 * Math.max(...done.map((d) => d.seconds as number))); // rep 0 warms up
      }
    }
    const ring = median(times.get('ring') as number[]);
    const doubling = median(times.get('recursive-doubling') as number[]);
    const row = {
      world: W,
      kilobytes: kb,
      ringMs: +ring.toFixed(2),
      doublingMs: +doubling.toFixed(2),
      doublingOverRing: +(doubling / ring).toFixed(2),
      autoPicks: chooseAlgorithm(kb * 1024, ringPlace(addresses, 0)),
      correct,
    };
    process.stderr.write(`${JSON.stringify(row)}\n`);
    rows.push(row);
  }
  for (const c of ranks) c.send({ cmd: 'exit' });
  return rows;
}

/** Every rank's peer in this process: the median of 40 collectives of each algorithm per size. */
async function measureInProcess(W: number, sizesKb: number[]): Promise<Record<string, unknown>[]> {
  const peers = Array.from({ length: W }, () => new AllreducePeer({ timeoutMs: 60_000 }));
  await Promise.all(peers.map((p) => p.start()));
  const addresses = peers.map((p) => p.address);
  const rows = [];
  let seq = 0;
  for (const kb of sizesKb) {
    const times = new Map<string, number[]>(ALGORITHMS.map((a) => [a, []]));
    for (let rep = 0; rep <= 40; rep++)
      for (const algorithm of ALGORITHMS) {
        const data = peers.map((_, r) => new Float32Array((kb * 1024) / 4).fill(r + 1));
        const id = `lat/${seq++}/0`;
        const t0 = performance.now();
        await Promise.all(peers.map((p, r) => p.allreduce(id, data[r] as Float32Array, r, ringPlace(addresses, r), '', { algorithm })));
        if (rep > 0) times.get(algorithm)?.push(performance.now() - t0);
      }
    const ring = median(times.get('ring') as number[]);
    const doubling = median(times.get('recursive-doubling') as number[]);
    rows.push({
      world: W,
      kilobytes: kb,
      inProcess: true,
      ringMs: +ring.toFixed(2),
      doublingMs: +doubling.toFixed(2),
      doublingOverRing: +(doubling / ring).toFixed(2),
    });
    process.stderr.write(`${JSON.stringify(rows[rows.length - 1])}\n`);
  }
  await Promise.all(peers.map((p) => p.close()));
  return rows;
}

async function main(): Promise<void> {
  const sizes = values['sizes-kb'].split(',').map(Number);
  const results = [];
  for (const W of values.worlds.split(',').map(Number))
    results.push(...(values['in-process'] ? await measureInProcess(W, sizes) : await measureWorld(W, sizes, Number(values.reps))));
  process.stdout.write(
    `${JSON.stringify({ benchmark: 'allreduce-latency', transport: 'tcp', reps: Number(values.reps), doublingMaxBytes: DOUBLING_MAX_BYTES, results }, null, 2)}\n`,
  );
}

void main();
