/**
 * Admitting a manifest of N images (generated lines, VGGFace2-like: 100 images an identity; no
 * image files needed): `facenet up --workers 1` on a fresh Redis prefix, then POST /v1/jobs with
 * the manifest while /healthz is probed every 50 ms and the coordinator's RSS sampled every 200 ms.
 * Prints one JSON line per N: admission seconds, /healthz p50/p99/max during it, coordinator RSS
 * growth (peak during admission, and kept after), bytes an image of the packed index and of its
 * gzipped copy in Redis.
 *
 *   npx tsx bench/dataset-admission.ts [--images 1000000,10000000] [--format csv|jsonl]
 */
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import IORedis from 'ioredis';
import { JobRecord, redisKeys } from '@facenet/protocol';
import { api, JobView, startCluster } from '../test/cluster-helpers';

const { values } = parseArgs({
  options: { images: { type: 'string', default: '1000000,10000000' }, format: { type: 'string', default: 'csv' } },
});
const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] as number;

async function writeManifest(file: string, images: number, format: string): Promise<void> {
  const out = createWriteStream(file);
  const write = async (s: string) => {
    if (!out.write(s)) await once(out, 'drain');
  };
  if (format === 'csv') await write('path,identity\n');
  const perIdentity = 100;
  let chunk = '';
  for (let n = 0; n < images; n++) {
    const id = `n${String(Math.floor(n / perIdentity)).padStart(7, '0')}`;
    const path = `${id}/${String(n % perIdentity).padStart(4, '0')}_01.jpg`;
    chunk += format === 'csv' ? `${path},${id}\n` : `${JSON.stringify({ path, identity: id })}\n`;
    if (chunk.length > 1 << 16) {
      await write(chunk);
      chunk = '';
    }
  }
  await write(chunk);
  await new Promise<void>((ok) => out.end(() => ok()));
}

async function measure(images: number, format: string): Promise<Record<string, number | string>> {
  const dir = mkdtempSync(join(tmpdir(), 'facenet-admitbench-'));
  const manifest = join(dir, `manifest.${format}`);
  await writeManifest(manifest, images, format);
  const cluster = await startCluster(1, join(dir, 'ckpt'), { FACENET_DATA_ROOTS: dir }, ['--no-miner', '--no-evaluator']);
  const rss = async () =>
    Number(/^facenet_coordinator_process_resident_memory_bytes (\S+)$/m.exec(await (await fetch(`${cluster.url}/metrics`)).text())?.[1]);
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const rss0 = await rss();
    let stop = false;
    const health: number[] = [];
    let peak = rss0;
    const probes = Promise.all([
      (async () => {
        while (!stop) {
          const t0 = performance.now();
          await (await fetch(`${cluster.url}/healthz`)).arrayBuffer();
          health.push(performance.now() - t0);
          await new Promise((r) => setTimeout(r, 50));
        }
      })(),
      (async () => {
        while (!stop) {
          peak = Math.max(peak, await rss());
          await new Promise((r) => setTimeout(r, 200));
        }
      })(),
    ]);
    const t0 = performance.now();
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', {
      dataset: { kind: 'manifest', path: manifest },
      train: { model: { architecture: 'tiny', imageSize: 24 }, batch: { P: 4, K: 2 }, steps: 1 },
    });
    const admitSeconds = (performance.now() - t0) / 1000;
    stop = true;
    await probes;
    await api(cluster.url, 'POST', `/v1/jobs/${job.id}/cancel`).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 3000));
    const kept = await rss();
    const redis = new IORedis(REDIS);
    const keys = redisKeys(cluster.prefix);
    const record = JSON.parse((await redis.get(keys.job(job.id))) as string) as JobRecord;
    const pieces = await redis.lrangeBuffer(keys.datasetIndex(record.dataIndex!.id), 0, -1);
    const stored = pieces.reduce((n, p) => n + p.length, 0);
    redis.disconnect();
    return {
      images,
      format,
      admitSeconds: +admitSeconds.toFixed(1),
      healthzP50Ms: +quantile(health, 0.5).toFixed(1),
      healthzP99Ms: +quantile(health, 0.99).toFixed(1),
      healthzMaxMs: +Math.max(...health).toFixed(1),
      rssPeakGrowthMB: +((peak - rss0) / 2 ** 20).toFixed(0),
      rssKeptGrowthMB: +((kept - rss0) / 2 ** 20).toFixed(0),
      packedBytesPerImage: +(record.dataIndex!.bytes / record.dataIndex!.images).toFixed(1),
      storedBytesPerImage: +(stored / record.dataIndex!.images).toFixed(1),
    };
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

void (async () => {
  for (const n of (values.images ?? '').split(',').map(Number)) console.log(JSON.stringify(await measure(n, values.format ?? 'csv')));
})();
