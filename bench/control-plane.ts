/**
 * The coordinator as finished jobs pile up: for each N, `facenet up --workers 1` on a fresh Redis
 * prefix, N finished jobs of 200 step records each written into Redis (as weeks of use leave
 * them), then: coordinator CPU while idle (10 s, from its own process_cpu_seconds_total),
 * /healthz p50/p99 (200 probes), a page of GET /v1/jobs (50 jobs; 20 requests, median), walking
 * every page (limit 500), and a new 5-step job end to end. Prints one JSON line per N.
 *
 *   npx tsx bench/control-plane.ts [--jobs 10,100,1000,3000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { api, JobView, seedFinishedJobs, startCluster, waitForState } from '../test/cluster-helpers';

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '10,100,1000,3000' } } });

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] as number;

async function timed(url: string): Promise<number> {
  const t0 = performance.now();
  await (await fetch(url)).arrayBuffer();
  return performance.now() - t0;
}

async function measure(n: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'facenet-cpbench-'));
  const cluster = await startCluster(1, join(dir, 'ckpt'), { FACENET_KEEP_FINISHED_JOBS: String(n + 100) }, [
    '--no-miner',
    '--no-evaluator',
  ]);
  try {
    const t0 = performance.now();
    await seedFinishedJobs(cluster, n);
    const seedSeconds = (performance.now() - t0) / 1000;
    const cpu = async () =>
      Number(/^facenet_coordinator_process_cpu_seconds_total (\S+)$/m.exec(await (await fetch(`${cluster.url}/metrics`)).text())?.[1]);
    const rss = async () =>
      Number(/^facenet_coordinator_process_resident_memory_bytes (\S+)$/m.exec(await (await fetch(`${cluster.url}/metrics`)).text())?.[1]);
    await new Promise((r) => setTimeout(r, 2000));
    const c0 = await cpu();
    const w0 = performance.now();
    await new Promise((r) => setTimeout(r, 10_000));
    const idleCpu = ((await cpu()) - c0) / ((performance.now() - w0) / 1000);
    const health: number[] = [];
    for (let i = 0; i < 200; i++) health.push(await timed(`${cluster.url}/healthz`));
    const page: number[] = [];
    for (let i = 0; i < 20; i++) page.push(await timed(`${cluster.url}/v1/jobs`));
    const w1 = performance.now();
    let cursor: string | null = null;
    let listed = 0;
    do {
      const res: Response = await fetch(`${cluster.url}/v1/jobs?limit=500${cursor ? `&cursor=${cursor}` : ''}`);
      listed += ((await res.json()) as unknown[]).length;
      cursor = res.headers.get('x-next-cursor');
    } while (cursor);
    const walkMs = performance.now() - w1;
    const w2 = performance.now();
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', {
      dataset: { kind: 'synthetic', identities: 12, imagesPerIdentity: 4 },
      train: { model: { architecture: 'tiny', imageSize: 24 }, batch: { P: 4, K: 2 }, steps: 5 },
    });
    await waitForState(cluster.url, job.id, ['completed'], 120_000);
    return {
      finishedJobs: n,
      seedSeconds: +seedSeconds.toFixed(1),
      idleCpuPercent: +(100 * idleCpu).toFixed(1),
      healthzP50Ms: +quantile(health, 0.5).toFixed(1),
      healthzP99Ms: +quantile(health, 0.99).toFixed(1),
      pageOf50MedianMs: +quantile(page, 0.5).toFixed(1),
      walkAllPagesMs: +walkMs.toFixed(0),
      listed,
      fiveStepJobSeconds: +((performance.now() - w2) / 1000).toFixed(2),
      coordinatorRssMB: +((await rss()) / 2 ** 20).toFixed(0),
    };
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  for (const n of values.jobs.split(',').map(Number)) console.log(JSON.stringify(await measure(n)));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
