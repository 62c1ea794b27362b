/**
 * Training from tar shards over HTTP (Debian nginx on loopback, range requests, each worker's disk
 * cache) against the same images as a local folder: one `facenet up --workers 2`, the same W=2
 * job on each, alternated. A job at a new image size misses the workers' decoded-image caches, so
 * the rounds after the first read shard bytes from the disk cache ("warm") while the folder is
 * read from the page cache. Prints one JSON line per job (median images/s over its steps after
 * the first) and a summary with the ratios.
 *
 *   npx tsx bench/shards-throughput.ts [--rounds 3] [--steps 20]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { api, JobView, startCluster, waitForState } from '../test/cluster-helpers';
import { CLI, ORL } from '../test/helpers';
import { haveNginx, startNginx } from '../test/nginx-helper';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, steps: { type: 'string', default: '20' } } });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  if (!haveNginx) throw new Error('nginx is not installed (npm run setup)');
  const dir = mkdtempSync(join(tmpdir(), 'facenet-shardbench-'));
  execFileSync(process.execPath, [CLI, 'data', 'pack', ORL, join(dir, 'www', 'orl'), '--shard-mb', '1']);
  const nginx = await startNginx(join(dir, 'www'), join(dir, 'nginx'));
  const cluster = await startCluster(2, join(dir, 'ckpt'), { FACENET_DATA_URLS: nginx.url, FACENET_DATA_ROOTS: ORL }, [
    '--no-miner',
    '--no-evaluator',
  ]);
  const run = async (dataset: object, imageSize: number) => {
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', {
      dataset,
      worldSize: 2,
      train: { model: { architecture: 'tiny', imageSize }, batch: { P: 8, K: 5 }, virtualShards: 2, steps: Number(values.steps) },
    });
    const done = await waitForState(cluster.url, job.id, ['completed', 'failed'], 600_000);
    if (done.state !== 'completed') throw new Error(JSON.stringify(done));
    const view = await api<{ recent: { step: number; imagesPerSecond: number }[] }>(cluster.url, 'GET', `/v1/jobs/${job.id}`);
    return median(view.recent.filter((r) => r.step > 1).map((r) => r.imagesPerSecond));
  };
  try {
    const ratios: { round: number; cache: string; ratio: number }[] = [];
    for (let round = 0; round < Number(values.rounds); round++) {
      const size = 24 + 4 * round; // a new size each round: decoded caches cold, the disk cache warm after round 0
      const requests = nginx.requests();
      const http = await run({ kind: 'shards', url: `${nginx.url}orl` }, size);
      const fetched = nginx.requests() - requests;
      const folder = await run({ kind: 'folder', path: ORL }, size);
      const cache = round === 0 ? 'cold' : 'warm';
      console.log(
        JSON.stringify({ round, imageSize: size, cache, httpImagesPerSecond: http, folderImagesPerSecond: folder, nginxRequests: fetched }),
      );
      ratios.push({ round, cache, ratio: http / folder });
    }
    const warm = ratios.filter((r) => r.cache === 'warm').map((r) => r.ratio);
    console.log(
      JSON.stringify({
        firstEpochRatio: +(ratios[0]?.ratio ?? NaN).toFixed(3),
        warmRatioMedian: warm.length ? +median(warm).toFixed(3) : null,
        warmRatios: warm.map((r) => +r.toFixed(3)),
      }),
    );
  } finally {
    await cluster.stop();
    nginx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
