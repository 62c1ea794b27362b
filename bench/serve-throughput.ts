/**
 * `facenet serve` under load on this machine: closed-loop clients on loopback, each posting one
 * LFW face at a time to /v1/embed, at 1, 8 and 32 concurrent clients (bounded: a fixed number of
 * requests per level). Reports requests/s, p50/p99 latency and the mean model batch (from the
 * service's /metrics, so the batching across requests is visible). The model is a fresh
 * checkpoint of the given architecture (weights do not change the cost).
 *
 *   npx tsx bench/serve-throughput.ts [--model inception-small] [--size 64] [--requests 200] [--clients 1,8,32]
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ArchitectureName, EmbeddingModel, selectBackend, writeCheckpoint } from '@facenet/core';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'inception-small' },
    size: { type: 'string', default: '64' },
    requests: { type: 'string', default: '200' },
    clients: { type: 'string', default: '1,8,32' },
    'max-batch': { type: 'string', default: '32' },
    'max-delay-ms': { type: 'string', default: '0' },
  },
});
const REPO = resolve(__dirname, '..');
const CLI = join(REPO, 'packages', 'cli', 'dist', 'main.js');
const LFW = process.env.FACENET_SHARED_DATA ? join(process.env.FACENET_SHARED_DATA, 'lfw') : resolve(REPO, '..', 'shared', 'data', 'lfw');

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] as number;

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'facenet-serve-bench-'));
  let serve: ChildProcess | undefined;
  try {
    await selectBackend({ log: null });
    const model = new EmbeddingModel({ architecture: values.model as ArchitectureName, imageSize: Number(values.size) });
    await writeCheckpoint(join(dir, 'ckpt'), model, undefined, { step: 0, seed: 1, preprocessing: { cropFraction: 0.5 } });
    model.dispose();
    const people = readdirSync(join(LFW, 'images')).slice(0, 64);
    const faces = people.map((p) => {
      const f = readdirSync(join(LFW, 'images', p))[0] as string;
      return readFileSync(join(LFW, 'images', p, f)).toString('base64');
    });
    serve = spawn(
      process.execPath,
      [
        CLI,
        'serve',
        '--checkpoint',
        join(dir, 'ckpt'),
        '--port',
        '0',
        '--json',
        '--max-batch',
        values['max-batch']!,
        '--max-delay-ms',
        values['max-delay-ms']!,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const url = await new Promise<string>((res, rej) => {
      let buf = '';
      serve!.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const line = buf.split('\n').find((l) => l.startsWith('{"event":"ready"'));
        if (line) res((JSON.parse(line) as { url: string }).url);
      });
      serve!.on('exit', (c) => rej(new Error(`serve exited ${c}`)));
    });
    const post = async (i: number) => {
      const t0 = performance.now();
      const r = await fetch(`${url}/v1/embed`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ images: [faces[i % faces.length]] }),
      });
      if (!r.ok) throw new Error(`HTTP ${r.status} ${await r.text()}`);
      await r.arrayBuffer();
      return performance.now() - t0;
    };
    for (let i = 0; i < 8; i++) await post(i); // warm-up
    const total = Number(values.requests);
    for (const clients of values.clients!.split(',').map(Number)) {
      const [batches0, images0] = [await metric(url, 'facenet_serve_batch_size_count'), await metric(url, 'facenet_serve_batch_size_sum')];
      const latencies: number[] = [];
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: clients }, async () => {
          while (next < total) latencies.push(await post(next++));
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      const [batches1, images1] = [await metric(url, 'facenet_serve_batch_size_count'), await metric(url, 'facenet_serve_batch_size_sum')];
      console.log(
        JSON.stringify({
          model: values.model,
          size: Number(values.size),
          clients,
          requests: latencies.length,
          requestsPerSecond: Number((latencies.length / seconds).toFixed(1)),
          p50Ms: Number(quantile(latencies, 0.5).toFixed(1)),
          p99Ms: Number(quantile(latencies, 0.99).toFixed(1)),
          meanBatch: Number(((images1 - images0) / (batches1 - batches0)).toFixed(2)),
        }),
      );
    }
  } finally {
    serve?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
