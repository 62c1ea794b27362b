/**
 * Redis commands per rank per step, by command: `facenet up --workers W` (no miner, no
 * evaluator), Redis's INFO commandstats read before and after a job of S steps, minus what the
 * same cluster issues idle over the same time (heartbeats, lock renewal, queue listeners).
 * INFO commandstats counts the whole server: run it alone on its Redis.
 *
 *   npx tsx bench/redis-commands.ts [--workers 2,4] [--steps 30]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import IORedis from 'ioredis';
import { api, JobView, startCluster, waitForState } from '../test/cluster-helpers';

const { values } = parseArgs({ options: { workers: { type: 'string', default: '2,4' }, steps: { type: 'string', default: '30' } } });
const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

async function commandCounts(redis: IORedis): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([\w|]+):calls=(\d+)/gm)) out.set(m[1] as string, Number(m[2]));
  return out;
}

const diff = (a: Map<string, number>, b: Map<string, number>) => new Map([...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const));

async function measure(W: number, steps: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'facenet-redisbench-'));
  const cluster = await startCluster(W, join(dir, 'ckpt'), {}, ['--no-miner', '--no-evaluator']);
  const redis = new IORedis(REDIS);
  try {
    await new Promise((r) => setTimeout(r, 3000));
    const t0 = performance.now();
    const c0 = await commandCounts(redis);
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', {
      dataset: { kind: 'synthetic', identities: 40, imagesPerIdentity: 6 },
      worldSize: W,
      checksumEvery: 1000,
      train: { model: { architecture: 'tiny', imageSize: 24 }, batch: { P: 2 * W, K: 2 }, virtualShards: W, steps, checkpointEvery: 1000 },
    });
    const done = await waitForState(cluster.url, job.id, ['completed', 'failed'], 600_000);
    if (done.state !== 'completed') throw new Error(JSON.stringify(done));
    const during = diff(c0, await commandCounts(redis));
    const seconds = (performance.now() - t0) / 1000;
    // The same cluster, idle, for as long.
    const i0 = await commandCounts(redis);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const idle = diff(i0, await commandCounts(redis));
    const perRankStep: Record<string, number> = {};
    let total = 0;
    for (const [cmd, n] of during) {
      const v = (n - (idle.get(cmd) ?? 0)) / (W * steps);
      if (v >= 0.05) perRankStep[cmd] = +v.toFixed(2);
      total += n - (idle.get(cmd) ?? 0);
    }
    console.log(
      JSON.stringify({
        workers: W,
        steps,
        seconds: +seconds.toFixed(1),
        perRankStep: +(total / (W * steps)).toFixed(1),
        byCommand: perRankStep,
      }),
    );
  } finally {
    redis.disconnect();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

void (async () => {
  for (const w of (values.workers ?? '').split(',').map(Number)) await measure(w, Number(values.steps));
})();
