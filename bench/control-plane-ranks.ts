/**
 * The coordinator's share of a step as the world grows, with no compute or allreduce in the way:
 * `facenet up --workers 0` (the real coordinator on its own Redis prefix) and W simulated ranks in
 * this process, each a registered worker (heartbeats) reading its own inbox through the workers'
 * own WorkInbox and answering every shard job at once with a well-formed result. Per W it runs a job of S steps and prints one
 * JSON line: wall time per step (median of the job's step records), coordinator CPU per step, the
 * shard-job payload per rank, and Redis commands per rank per step (INFO commandstats: run alone).
 * CPU and RSS are also taken in the steady state: from the job's 5th committed step to its end,
 * and RSS every tenth of the job (flat, or growing with steps).
 *
 *   npx tsx bench/control-plane-ranks.ts [--ranks 16,64,256] [--steps 20]
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import IORedis from 'ioredis';
import { isStateQuery, JobRecord, redisKeys, ShardJobResult, StepRecord, WorkerInfo, WorkerJobData } from '@facenet/protocol';
import { WorkInbox } from '@facenet/service-kit';
import { api, JobView, startCluster, waitForState } from '../test/cluster-helpers';

const { values } = parseArgs({ options: { ranks: { type: 'string', default: '16,64,256' }, steps: { type: 'string', default: '20' } } });
const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function commandCount(redis: IORedis): Promise<number> {
  let n = 0;
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_[\w|]+:calls=(\d+)/gm)) n += Number(m[1]);
  return n;
}

/** W ranks that register, heartbeat and answer shard jobs without computing anything. */
async function simulatedRanks(prefix: string, W: number, payloads: number[]): Promise<() => Promise<void>> {
  const keys = redisKeys(prefix);
  const redis = new IORedis(REDIS, { maxRetriesPerRequest: null });
  const ids = Array.from({ length: W }, (_, i) => `sim-${String(i).padStart(3, '0')}`);
  const register = () => {
    const m = redis.multi();
    for (const [i, id] of ids.entries()) {
      const info: WorkerInfo = {
        id,
        address: `127.0.0.1:${20000 + i}`,
        host: 'sim',
        pid: process.pid,
        backend: 'simulated',
        startedAt: new Date().toISOString(),
        budget: { memoryBytes: 2 ** 36, gflops: 1000 },
      };
      m.set(keys.worker(id), JSON.stringify(info), 'PX', 15_000).sadd(keys.workers, id);
    }
    return m.exec();
  };
  await register();
  const heartbeat = setInterval(() => void register(), 5000);
  const answer = async (d: WorkerJobData): Promise<ShardJobResult | null> => {
    if (isStateQuery(d)) return null;
    payloads.push(JSON.stringify(d).length);
    if (d.checkpointDir) mkdirSync(d.checkpointDir, { recursive: true });
    return {
      step: d.step,
      rank: d.rank,
      generation: d.generation,
      stats: {
        loss: 0.2,
        activeFraction: 0.5,
        meanPositiveDistance: 0.5,
        meanNegativeDistance: 1,
        triplets: 10,
        images: 4 * d.ring.size,
        classificationLoss: 0,
        classificationAccuracy: 0,
      },
      timings: { dataMs: 0, computeMs: 0, allreduceMs: 0, optimizerMs: 0, checkpointMs: 0 },
      allreduceBytes: 0,
      checksum: d.checksum ? 'simulated' : undefined,
      checkpoint: d.checkpointDir,
      skipped: [],
    };
  };
  const inboxes = ids.map(
    (id) =>
      new WorkInbox(
        redis,
        { inbox: keys.workerInbox(id), results: keys.workResults },
        id,
        (item) => answer(item.data as WorkerJobData),
        console.error,
      ),
  );
  for (const inbox of inboxes) await inbox.start();
  return async () => {
    clearInterval(heartbeat);
    await Promise.all(inboxes.map((inbox) => inbox.close(1000)));
    const m = redis.multi();
    for (const id of ids) m.del(keys.worker(id), keys.workerInbox(id)).srem(keys.workers, id);
    await m.exec();
    redis.disconnect();
  };
}

async function measure(W: number, steps: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'facenet-ranksbench-'));
  const cluster = await startCluster(0, join(dir, 'ckpt'), {}, ['--no-miner', '--no-evaluator']);
  const redis = new IORedis(REDIS);
  const payloads: number[] = [];
  const stopRanks = await simulatedRanks(cluster.prefix, W, payloads);
  const metric = async (name: string) =>
    Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(await (await fetch(`${cluster.url}/metrics`)).text())?.[1]);
  const cpu = () => metric('facenet_coordinator_process_cpu_seconds_total');
  const rss = () => metric('facenet_coordinator_process_resident_memory_bytes');
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const [cpu0, cmd0, t0] = [await cpu(), await commandCount(redis), performance.now()];
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', {
      dataset: { kind: 'synthetic', identities: 4 * W, imagesPerIdentity: 4 },
      worldSize: W,
      checksumEvery: 10,
      train: { model: { architecture: 'tiny', imageSize: 16 }, batch: { P: 2 * W, K: 2 }, virtualShards: W, steps, checkpointEvery: 1000 },
    });
    // The steady state starts once the job's start (planning, reshape) is behind it.
    let steady: { cpu: number; rss: number; step: number } | undefined;
    while (!steady) {
      const v = await api<{ step: number; state: string }>(cluster.url, 'GET', `/v1/jobs/${job.id}`);
      if (v.step >= 5 || v.state !== 'running') steady = { cpu: await cpu(), rss: await rss(), step: v.step };
      else await new Promise((r) => setTimeout(r, 20));
    }
    // RSS every tenth of the job: flat, or growing with steps?
    const rssMB: number[] = [];
    let nextSample = steps / 10;
    let done: JobView | undefined;
    while (!done) {
      const v = await api<JobView>(cluster.url, 'GET', `/v1/jobs/${job.id}`);
      if (v.state !== 'running' && v.state !== 'pending') done = await waitForState(cluster.url, job.id, ['completed', 'failed'], 60_000);
      else if (v.step >= nextSample) {
        rssMB.push(Math.round((await rss()) / 2 ** 20));
        nextSample += steps / 10;
      } else await new Promise((r) => setTimeout(r, 50));
    }
    if (done.state !== 'completed') throw new Error(JSON.stringify(done).slice(0, 2000));
    const [cpu1, cmd1, t1, rss1] = [await cpu(), await commandCount(redis), performance.now(), await rss()];
    const history = (await redis.lrange(redisKeys(cluster.prefix).jobHistory(job.id), 0, -1)).map((h) => JSON.parse(h) as StepRecord);
    const record = JSON.parse((await redis.get(redisKeys(cluster.prefix).job(job.id))) as string) as JobRecord;
    console.log(
      JSON.stringify({
        ranks: W,
        steps,
        jobSeconds: +((t1 - t0) / 1000).toFixed(1),
        stepMsMedian: +median(history.map((h) => h.stepMs)).toFixed(1),
        coordinatorCpuMsPerStep: +((1000 * (cpu1 - cpu0)) / steps).toFixed(1),
        steadyCpuMsPerStep: +((1000 * (cpu1 - steady.cpu)) / Math.max(1, steps - steady.step)).toFixed(1),
        steadyRssGrowthMB: +((rss1 - steady.rss) / 2 ** 20).toFixed(1),
        rssMBEveryTenth: rssMB,
        shardJobBytesMedian: median(payloads),
        redisCommandsPerRankStep: +((cmd1 - cmd0) / (W * steps)).toFixed(1),
        faults: record.faults.length,
      }),
    );
  } finally {
    await stopRanks();
    redis.disconnect();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

void (async () => {
  for (const w of (values.ranks ?? '').split(',').map(Number)) await measure(w, Number(values.steps));
  process.exit(0);
})();
