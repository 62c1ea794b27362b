/**
 * `facenet serve` under load on this machine: closed-loop clients on loopback, each posting one
 * LFW face at a time to /v1/embed, at 1, 8 and 32 concurrent clients (bounded: a fixed number of
 * requests per level), while a prober asks /healthz every 20 ms (a liveness probe's view). One
 * service per inference engine, both up at once and loaded in turn, round by round, so their
 * ratio comes from one run. Reports requests/s, p50/p99 latency, /healthz p99 and the mean model
 * batch (from the service's /metrics, so the batching across requests is visible), then medians
 * over rounds. The model is a fresh checkpoint of the given architecture (weights do not change the cost).
 *
 *   npx tsx bench/serve-throughput.ts [--model inception-small] [--size 64] [--requests 200] [--clients 1,8,32]
 *     [--engines tfjs,onnxruntime] [--rounds 3] [--threads N]
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
    engines: { type: 'string', default: 'tfjs,onnxruntime' },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string' },
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

const median = (xs: number[]) => quantile(xs, 0.5);

function startServe(checkpoint: string, engine: string): { child: ChildProcess; url: Promise<string> } {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--checkpoint',
      checkpoint,
      '--port',
      '0',
      '--json',
      '--engine',
      engine,
      '--max-batch',
      values['max-batch']!,
      '--max-delay-ms',
      values['max-delay-ms']!,
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...(values.threads ? { FACENET_INFERENCE_THREADS: values.threads } : {}) },
    },
  );
  const url = new Promise<string>((res, rej) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.startsWith('{"event":"ready"'));
      if (line) res((JSON.parse(line) as { url: string }).url);
    });
    child.on('exit', (c) => rej(new Error(`serve (${engine}) exited ${c}`)));
  });
  return { child, url };
}

interface Level {
  engine: string;
  clients: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  healthzP99Ms: number;
  meanBatch: number;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'facenet-serve-bench-'));
  const services: ChildProcess[] = [];
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
    const engines = values.engines!.split(',');
    const urls = new Map<string, string>();
    for (const engine of engines) {
      const s = startServe(join(dir, 'ckpt'), engine);
      services.push(s.child);
      urls.set(engine, await s.url);
    }
    const post = async (url: string, i: number) => {
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
    for (const url of urls.values()) for (let i = 0; i < 8; i++) await post(url, i); // warm-up
    const total = Number(values.requests);
    const levels: Level[] = [];
    for (let round = 0; round < Number(values.rounds); round++)
      for (const clients of values.clients!.split(',').map(Number))
        for (const engine of engines) {
          const url = urls.get(engine) as string;
          const [batches0, images0] = [
            await metric(url, 'facenet_serve_batch_size_count'),
            await metric(url, 'facenet_serve_batch_size_sum'),
          ];
          const latencies: number[] = [];
          const probes: number[] = [];
          let next = 0;
          let loading = true;
          const prober = (async () => {
            while (loading) {
              const t = performance.now();
              await (await fetch(`${url}/healthz`)).arrayBuffer();
              probes.push(performance.now() - t);
              await new Promise((r) => setTimeout(r, 20));
            }
          })();
          const t0 = performance.now();
          await Promise.all(
            Array.from({ length: clients }, async () => {
              while (next < total) latencies.push(await post(url, next++));
            }),
          );
          const seconds = (performance.now() - t0) / 1000;
          loading = false;
          await prober;
          const [batches1, images1] = [
            await metric(url, 'facenet_serve_batch_size_count'),
            await metric(url, 'facenet_serve_batch_size_sum'),
          ];
          const level: Level = {
            engine,
            clients,
            requestsPerSecond: Number((latencies.length / seconds).toFixed(1)),
            p50Ms: Number(quantile(latencies, 0.5).toFixed(1)),
            p99Ms: Number(quantile(latencies, 0.99).toFixed(1)),
            healthzP99Ms: Number(quantile(probes, 0.99).toFixed(1)),
            meanBatch: Number(((images1 - images0) / (batches1 - batches0)).toFixed(2)),
          };
          levels.push(level);
          console.error(JSON.stringify({ round, ...level }));
        }
    const summary = engines.flatMap((engine) =>
      values.clients!.split(',').map((c) => {
        const ls = levels.filter((l) => l.engine === engine && l.clients === Number(c));
        return {
          engine,
          clients: Number(c),
          requestsPerSecond: median(ls.map((l) => l.requestsPerSecond)),
          p99Ms: median(ls.map((l) => l.p99Ms)),
          healthzP99Ms: median(ls.map((l) => l.healthzP99Ms)),
          meanBatch: median(ls.map((l) => l.meanBatch)),
        };
      }),
    );
    const base = engines[0] as string;
    const ratios = engines.slice(1).map((engine) => ({
      engine,
      over: base,
      requestsPerSecond: values.clients!.split(',').map((c) => {
        const a = summary.find((x) => x.engine === engine && x.clients === Number(c))!.requestsPerSecond;
        const b = summary.find((x) => x.engine === base && x.clients === Number(c))!.requestsPerSecond;
        return { clients: Number(c), ratio: Number((a / b).toFixed(2)) };
      }),
    }));
    console.log(
      JSON.stringify(
        { model: values.model, size: Number(values.size), requests: total, rounds: Number(values.rounds), medians: summary, ratios },
        null,
        1,
      ),
    );
  } finally {
    for (const s of services) s.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
