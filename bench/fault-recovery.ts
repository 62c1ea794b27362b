/**
 * Recovery time and steps lost per fault class, each on a fresh job of its own on one cluster of
 * real processes (private redis-server with AOF, coordinator, workers; no miner):
 *  - kill9-compute: SIGKILL to a rank while it computes gradients;
 *  - kill9-allreduce: SIGKILL to a rank inside the allreduce (a wide embedding makes it long);
 *  - sigterm: a rank drains;
 *  - coordinator-kill: SIGKILL to the coordinator, a new one started at once (it waits out the lock);
 *  - redis-restart: redis-server killed and restarted on its AOF.
 * Recovery time: from the fault to the first step committed by the new world generation (for the
 * worker faults), or the first step committed after it (coordinator, Redis). Steps lost:
 * committed steps that had to be recomputed (the fault record's, or the drop of the job's step).
 *
 *   npx tsx bench/fault-recovery.ts [--workers 3] [--classes kill9-compute,...]
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PrivateCluster, sleep } from './lib/private-cluster';

const CLASSES = ['kill9-compute', 'kill9-allreduce', 'sigterm', 'coordinator-kill', 'redis-restart'] as const;
type FaultClass = (typeof CLASSES)[number];
const { values } = parseArgs({
  options: { workers: { type: 'string', default: '3' }, classes: { type: 'string', default: CLASSES.join(',') } },
});

const ORL = resolve(__dirname, '..', '..', 'shared', 'data', 'orl');

interface Job {
  id: string;
  state: string;
  step: number;
  faults: { stepsLost?: number; recovery?: string; kind?: string }[];
  world: { size: number; generation: number };
}
interface Step {
  step: number;
  timings: { dataMs: number; computeMs: number; allreduceMs: number }[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function measure(c: PrivateCluster, cls: FaultClass, W: number): Promise<Record<string, unknown>> {
  const wide = cls === 'kill9-allreduce';
  const job = await c.call<Job>('POST', '/v1/jobs', {
    dataset: { kind: 'folder', path: ORL },
    holdout: 10,
    worldSize: W,
    checksumEvery: 5,
    train: {
      model: { architecture: 'tiny', imageSize: 48, ...(wide ? { embeddingDim: 65536 } : {}) },
      batch: { P: 12, K: 6 },
      virtualShards: 6,
      steps: 40,
      checkpointEvery: 10,
      seed: 4,
    },
  });
  const get = () => c.call<Job>('GET', `/v1/jobs/${job.id}`);
  while ((await get()).step < 13) await sleep(50);
  // Time the fault into the phase: steps start right after a commit; compute, then allreduce.
  const history = await c.call<Step[]>('GET', `/v1/jobs/${job.id}/history`);
  const compute = median(history.flatMap((h) => h.timings.map((t) => t.dataMs + t.computeMs)));
  const allreduce = median(history.flatMap((h) => h.timings.map((t) => t.allreduceMs)));
  const start = (await get()).step;
  while ((await get()).step === start) await sleep(5);
  const at = await get();
  const committed = at.step;
  const worldChanges = cls.startsWith('kill9') || cls === 'sigterm';
  const workers = await c.call<{ pid: number; assignment: { job: string; rank: number } | null }[]>('GET', '/v1/workers');
  const victim = workers.find((w) => w.assignment?.job === job.id && w.assignment.rank === 1)!.pid;
  if (cls === 'kill9-compute') await sleep(compute / 2);
  if (cls === 'kill9-allreduce') await sleep(compute + allreduce / 3);
  const t0 = performance.now();
  if (cls === 'kill9-compute' || cls === 'kill9-allreduce') process.kill(victim, 'SIGKILL');
  if (cls === 'sigterm') process.kill(victim, 'SIGTERM');
  if (cls === 'coordinator-kill') {
    c.coordinator.kill('SIGKILL');
    await c.startCoordinator();
  }
  if (cls === 'redis-restart') {
    c.redis.kill('SIGKILL');
    await new Promise((r) => c.redis.once('exit', r));
    await c.startRedis();
  }
  let low = committed;
  let recoveredMs = NaN;
  let changedAt: number | undefined; // the job's step when the new generation took over
  for (;;) {
    const j = await get();
    low = Math.min(low, j.step);
    if (changedAt === undefined && j.world.generation > at.world.generation) changedAt = j.step;
    const moved = worldChanges ? changedAt !== undefined && j.step > changedAt : j.step > committed;
    if (Number.isNaN(recoveredMs) && moved) recoveredMs = performance.now() - t0;
    if (['completed', 'failed', 'cancelled'].includes(j.state)) {
      const faults = j.faults.map((f) => ({ kind: f.kind, recovery: f.recovery, stepsLost: f.stepsLost }));
      const replacement = cls.startsWith('kill9') || cls === 'sigterm' ? c.startWorker() : undefined;
      if (replacement) while ((await c.call<unknown[]>('GET', '/v1/workers')).length < W) await sleep(200);
      return {
        fault: cls,
        state: j.state,
        recoverySeconds: recoveredMs / 1000,
        stepsLost: Math.max(committed - low, ...faults.map((f) => f.stepsLost ?? 0)),
        faults,
        medianComputeMs: compute,
        medianAllreduceMs: allreduce,
      };
    }
    await sleep(20);
  }
}

async function main(): Promise<void> {
  const W = Number(values.workers);
  const c = new PrivateCluster();
  try {
    await c.startRedis();
    await c.startCoordinator();
    for (let i = 0; i < W; i++) c.startWorker();
    while ((await c.call<unknown[]>('GET', '/v1/workers')).length < W) await sleep(200);
    const results = [];
    for (const cls of values.classes.split(',') as FaultClass[]) {
      const r = await measure(c, cls, W);
      process.stderr.write(`${JSON.stringify(r)}\n`);
      results.push(r);
    }
    process.stdout.write(`${JSON.stringify({ benchmark: 'fault-recovery', world: W, results }, null, 2)}\n`);
  } finally {
    await c.stop();
  }
}

void main();
