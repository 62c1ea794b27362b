import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { extract } from 'tar-stream';
import { Readable } from 'node:stream';
import { decodeSquare } from '@facenet/core';
import { api, JobView, startCluster, waitForState } from '../cluster-helpers';
import { CLI, LFW, ORL, REPO, startCliService, tempDir } from '../helpers';
import { CHROMIUM, needTools } from '../requirements';

const SIZE = 32;
const FACES = ['AJ_Cook/AJ_Cook_0001.jpg', 'Aaron_Eckhart/Aaron_Eckhart_0001.jpg'];

/** Runs the CLI and returns its stdout. */
const cli = (args: string[]) => execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Serves files under `roots` (URL prefix -> folder) on loopback: the page, tfjs and the model from one origin. */
function staticServer(roots: Record<string, string>): Promise<Server> {
  const types: Record<string, string> = {
    '.html': 'text/html',
    '.js': 'text/javascript',
    '.json': 'application/json',
    '.png': 'image/png',
  };
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const prefix = Object.keys(roots).find((p) => path.startsWith(p));
    const rel = prefix === undefined ? '' : normalize(path.slice(prefix.length));
    if (prefix === undefined || rel.startsWith('..')) return void res.writeHead(404).end();
    const stream = createReadStream(join(roots[prefix] as string, rel));
    stream.on('error', () => res.writeHead(404).end());
    stream.on('open', () => {
      res.writeHead(200, { 'content-type': types[extname(rel)] ?? 'application/octet-stream' });
      stream.pipe(res);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('export of a job trained by `facenet up`: the CLI’s embeddings in onnxruntime-node and in Chromium', function () {
  this.timeout(600_000);
  const t = tempDir('facenet-export-');
  let checkpoint = '';
  let faces = '';
  let cliEmbeddings: number[][] = [];

  before(async () => {
    // Two LFW faces as PNGs already at the model's input size: lossless, so a browser decodes the
    // very pixels `facenet embed` reads (a JPEG's decoders may differ by a unit here and there).
    // Without LFW (a clone without ../shared), two ORL faces (real or the synthetic stand-in):
    // the test compares two runtimes on the same pixels, which need only be faces.
    faces = join(t.dir, 'faces');
    mkdirSync(faces);
    if (existsSync(join(LFW, 'images')))
      for (const [i, f] of FACES.entries())
        await sharp(join(LFW, 'images', f))
          .resize(SIZE, SIZE, { fit: 'cover' })
          .png()
          .toFile(join(faces, `face${i}.png`));
    else
      for (const [i, f] of ['s1/1.pgm', 's2/1.pgm'].entries()) {
        const img = await decodeSquare(join(ORL, f), SIZE);
        await sharp(Buffer.from(img.pixels), { raw: { width: SIZE, height: SIZE, channels: 3 } })
          .png()
          .toFile(join(faces, `face${i}.png`));
      }

    const job = join(t.dir, 'job.yaml');
    writeFileSync(
      job,
      [
        'name: export test',
        'dataset: { kind: synthetic, identities: 24, imagesPerIdentity: 6 }',
        'holdout: 4',
        'worldSize: 2',
        'train:',
        `  model: { architecture: tiny, imageSize: ${SIZE}, embeddingDim: 32 }`,
        '  batch: { P: 6, K: 4 }',
        '  virtualShards: 2',
        '  steps: 12',
        '  checkpointEvery: 6',
        '',
      ].join('\n'),
    );
    const up = spawn(
      process.execPath,
      [CLI, 'up', '--ephemeral', '--workers', '2', '--port', '0', '--no-miner', '--checkpoint-root', join(t.dir, 'runs'), '--job', job],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    up.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    up.stderr.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((resolve) => up.on('exit', resolve));
    assert.equal(code, 0, `facenet up exited ${code}:\n${stdout.slice(-2000)}`);
    checkpoint = /^checkpoint: (.+)$/m.exec(stdout)?.[1] ?? '';
    assert.ok(checkpoint && checkpoint !== 'undefined', `no checkpoint in:\n${stdout.slice(-2000)}`);

    const embedded = JSON.parse(cli(['embed', faces, '--checkpoint', checkpoint])) as {
      dim: number;
      embeddings: { path: string; embedding: number[] }[];
    };
    assert.equal(embedded.dim, 32);
    cliEmbeddings = [0, 1].map((i) => embedded.embeddings.find((e) => e.path.endsWith(`face${i}.png`))!.embedding);
  });
  after(() => t.cleanup());

  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    assert.equal(a.length, b.length);
    return Math.max(...Array.from(a, (v, i) => Math.abs(v - (b[i] as number))));
  };

  it('ONNX: onnxruntime-node gives `facenet embed`’s embeddings (max abs difference <= 1e-4) and carries the preprocessing in its metadata', async () => {
    const out = join(t.dir, 'onnx');
    const r = JSON.parse(cli(['export', checkpoint, '--format', 'onnx', '--out', out, '--json'])) as { files: { name: string }[] };
    assert.ok(r.files.some((f) => f.name === 'model.onnx'));
    const session = await ort.InferenceSession.create(join(out, 'model.onnx'));
    const pixels = new Float32Array(2 * SIZE * SIZE * 3);
    for (const i of [0, 1]) {
      const raw = await sharp(join(faces, `face${i}.png`))
        .removeAlpha()
        .raw()
        .toBuffer();
      raw.forEach((v, k) => (pixels[i * SIZE * SIZE * 3 + k] = v / 127.5 - 1));
    }
    const y = (await session.run({ input: new ort.Tensor('float32', pixels, [2, SIZE, SIZE, 3]) })).embeddings!;
    const got = y.data as Float32Array;
    for (const i of [0, 1]) {
      const d = maxDiff(got.subarray(i * 32, (i + 1) * 32), cliEmbeddings[i]!);
      assert.ok(d <= 1e-4, `face ${i}: max abs difference ${d}`);
    }
    await session.release();
    const model = onnx.ModelProto.decode(readFileSync(join(out, 'model.onnx')));
    const props = Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]));
    assert.deepEqual(JSON.parse(props['facenet.preprocessing'] as string).cropFraction, 1);
    assert.equal(JSON.parse(props['facenet.metadata'] as string).input.shape[1], SIZE);
  });

  it('TensorFlow.js: the example page in Debian Chromium gives the same embeddings', async function () {
    needTools(this, 'chromium');
    const out = join(t.dir, 'tfjs');
    cli(['export', checkpoint, '--format', 'tfjs', '--out', out]);
    const server = await staticServer({
      '/model/': out,
      '/faces/': faces,
      '/tfjs/': join(REPO, 'node_modules', '@tensorflow', 'tfjs', 'dist'),
      '/': join(REPO, 'examples', 'browser-embed'),
    });
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      await page.goto(`${base}/index.html?model=/model/model.json&tfjs=/tfjs/tf.min.js&images=/faces/face0.png,/faces/face1.png`);
      await page.waitForFunction(() => 'facenetResult' in globalThis, undefined, { timeout: 60_000 });
      const result = (await page.evaluate(() => (globalThis as unknown as { facenetResult: unknown }).facenetResult)) as {
        embeddings?: number[][];
        error?: string;
        backend?: string;
      };
      assert.equal(result.error, undefined, result.error);
      assert.equal(result.backend, 'cpu');
      for (const i of [0, 1]) {
        const d = maxDiff(result.embeddings![i]!, cliEmbeddings[i]!);
        assert.ok(d <= 1e-4, `face ${i}: max abs difference ${d}`);
      }
      assert.match(await page.locator('#out').innerText(), /squared distance of the first two/);
    } finally {
      await browser.close();
      server.close();
    }
  });

  it('API: GET /v1/jobs/:id/export answers the ONNX model of a checkpoint (onnxruntime matches `facenet embed`) and a tar for tfjs; bad input is a 4xx naming the field', async () => {
    const cluster = await startCluster(2, join(t.dir, 'api-runs'));
    try {
      const spec = {
        name: 'export-api',
        dataset: { kind: 'synthetic', identities: 24, imagesPerIdentity: 6 },
        holdout: 4,
        worldSize: 2,
        train: {
          model: { architecture: 'tiny', imageSize: SIZE, embeddingDim: 32 },
          batch: { P: 6, K: 4 },
          virtualShards: 2,
          steps: 6,
          checkpointEvery: 3,
        },
      };
      const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec);
      await waitForState(cluster.url, job.id, ['completed']);
      const res = await fetch(`${cluster.url}/v1/jobs/${job.id}/export?format=onnx&step=6`);
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(res.headers.get('x-facenet-checkpoint-step'), '6');
      const bytes = new Uint8Array(await res.arrayBuffer());
      const ckpt = (await api<{ step: number; dir: string }[]>(cluster.url, 'GET', `/v1/jobs/${job.id}/checkpoints`)).find(
        (c) => c.step === 6,
      )!;
      const want = JSON.parse(cli(['embed', join(faces, 'face0.png'), '--checkpoint', ckpt.dir])).embeddings[0].embedding as number[];
      const session = await ort.InferenceSession.create(bytes);
      const raw = await sharp(join(faces, 'face0.png')).removeAlpha().raw().toBuffer();
      const input = new ort.Tensor(
        'float32',
        Float32Array.from(raw, (v) => v / 127.5 - 1),
        [1, SIZE, SIZE, 3],
      );
      const got = (await session.run({ input })).embeddings!.data as Float32Array;
      assert.ok(maxDiff(got, want) <= 1e-4, `max abs difference ${maxDiff(got, want)}`);
      await session.release();

      const tarRes = await fetch(`${cluster.url}/v1/jobs/${job.id}/export?format=tfjs`);
      assert.equal(tarRes.status, 200);
      const names: string[] = [];
      const ex = extract();
      ex.on('entry', (h, stream, next) => {
        names.push(h.name);
        stream.on('end', next).resume();
      });
      await new Promise((resolve, reject) => {
        ex.on('finish', () => resolve(undefined)).on('error', reject);
        Readable.fromWeb(tarRes.body as never).pipe(ex);
      });
      const step = tarRes.headers.get('x-facenet-checkpoint-step');
      assert.deepEqual(names.map((n) => n.split('/')[1]).sort(), ['facenet.json', 'group1-shard1of1.bin', 'model.json']);
      assert.ok(
        names.every((n) => n.startsWith(`${job.id}-step-${step}/`)),
        names.join(', '),
      );

      // An export that fails on the server names the checkpoint by its place under the root, not the server's path.
      const three = (await api<{ step: number; dir: string }[]>(cluster.url, 'GET', `/v1/jobs/${job.id}/checkpoints`)).find(
        (c) => c.step === 3,
      )!;
      writeFileSync(join(three.dir, 'manifest.json'), '{"format": "facenet-checkpoint/1"}');
      const broken = await fetch(`${cluster.url}/v1/jobs/${job.id}/export?format=onnx&step=3`);
      const message = ((await broken.json()) as { error: string }).error;
      assert.ok(broken.status >= 400, message);
      assert.match(message, new RegExp(`<checkpoint root>/${job.id}/step-000003`));
      assert.ok(!message.includes(cluster.checkpointRoot), message);

      // `facenet serve --job` loads the job's best checkpoint (or newest, unevaluated) through the same API.
      const best =
        (await api<{ step: number; best: boolean }[]>(cluster.url, 'GET', `/v1/jobs/${job.id}/checkpoints`)).find((c) => c.best)?.step ?? 6;
      const { child: serve, url } = await startCliService(['serve', '--job', job.id, '--api', cluster.url, '--port', '0']);
      try {
        const health = (await (await fetch(`${url}/healthz`)).json()) as { checkpoint: { step: number } };
        assert.equal(health.checkpoint.step, best);
      } finally {
        serve.kill('SIGTERM');
      }

      const bad = await fetch(`${cluster.url}/v1/jobs/${job.id}/export?format=pt`);
      assert.equal(bad.status, 400);
      assert.match(await bad.text(), /format/);
      const missing = await fetch(`${cluster.url}/v1/jobs/${job.id}/export?step=5`);
      assert.equal(missing.status, 409);
      assert.match(await missing.text(), /no checkpoint at step 5 \(have: 3, 6\)/);
    } finally {
      await cluster.stop();
    }
  });
});
