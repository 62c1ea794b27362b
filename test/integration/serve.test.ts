import { strict as assert } from 'node:assert';
import { ChildProcess, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EmbeddingModel, writeCheckpoint } from '@facenet/core';
import { CLI, ORL, startCliService, tempDir, useBackend } from '../helpers';
import { needSoftwareGpu } from '../requirements';

const TOKEN = 'read-token-0123456789abcdef';

describe('facenet serve: embeddings over HTTP, batched, with the coordinator’s access rules and input checks', function () {
  this.timeout(180_000);
  const t = tempDir('facenet-serve-');
  const checkpoint = join(t.dir, 'ckpt');
  const gallery = join(t.dir, 'gallery');
  let serve: ChildProcess;
  let url = '';
  const b64 = (path: string) => readFileSync(path).toString('base64');
  const post = (path: string, body: unknown, token: string | null = TOKEN) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });

  before(async () => {
    await useBackend();
    const model = new EmbeddingModel({ architecture: 'tiny', imageSize: 32, embeddingDim: 16, seed: 5 });
    await writeCheckpoint(checkpoint, model, undefined, {
      step: 1,
      seed: 5,
      preprocessing: { cropFraction: 1 },
      evaluation: { threshold: 0.5, accuracy: 0.9, val: 0.5, far: 0.001, step: 1 },
    });
    model.dispose();
    for (const person of ['s1', 's2', 's3']) {
      mkdirSync(join(gallery, person), { recursive: true });
      for (const i of [1, 2, 3]) cpSync(join(ORL, person, `${i}.pgm`), join(gallery, person, `${i}.pgm`));
    }
    writeFileSync(join(t.dir, 'tokens'), `read:${TOKEN}\n`);
    ({ child: serve, url } = await startCliService([
      'serve',
      '--checkpoint',
      checkpoint,
      '--port',
      '0',
      '--gallery',
      gallery,
      '--tokens-file',
      join(t.dir, 'tokens'),
      '--max-images',
      '4',
    ]));
  });
  after(() => {
    serve?.kill('SIGTERM');
    t.cleanup();
  });

  it('POST /v1/embed gives `facenet embed`’s embeddings; /healthz describes the model and gallery', async () => {
    const files = [join(ORL, 's4', '1.pgm'), join(ORL, 's5', '1.pgm')];
    const res = await post('/v1/embed', { images: files.map(b64) });
    assert.equal(res.status, 200, await res.clone().text());
    const got = (await res.json()) as { dim: number; embeddings: number[][] };
    assert.equal(got.dim, 16);
    for (const [i, f] of files.entries()) {
      const want = JSON.parse(
        execFileSync(process.execPath, [CLI, 'embed', f, '--checkpoint', checkpoint], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      ).embeddings[0].embedding as number[];
      const d = Math.max(...want.map((v, j) => Math.abs(v - (got.embeddings[i]![j] as number))));
      assert.ok(d <= 1e-5, `image ${i}: max abs difference ${d}`);
    }
    const health = (await (await fetch(`${url}/healthz`)).json()) as {
      ok: boolean;
      gallery: { identities: number; images: number };
      threshold: number;
    };
    assert.deepEqual([health.ok, health.gallery, health.threshold], [true, { identities: 3, images: 9 }, 0.5]);
  });

  it('POST /v1/verify and /v1/identify answer with the checkpoint’s threshold and the gallery’s people', async () => {
    const same = (await (await post('/v1/verify', { a: b64(join(ORL, 's2', '1.pgm')), b: b64(join(ORL, 's2', '1.pgm')) })).json()) as {
      distance: number;
      same: boolean;
    };
    assert.ok(same.distance < 1e-6 && same.same, JSON.stringify(same));
    // An image in the gallery is its own nearest neighbour.
    const r = (await (await post('/v1/identify', { images: [b64(join(ORL, 's3', '2.pgm'))], k: 3 })).json()) as {
      results: { identity: string | null; candidates: { identity: string; distance: number }[] }[];
    };
    assert.equal(r.results[0]!.identity, 's3');
    assert.deepEqual(r.results[0]!.candidates.map((c) => c.identity).sort(), ['s1', 's2', 's3']);
    assert.ok(r.results[0]!.candidates[0]!.distance < 1e-6);
  });

  it('bad input is a 4xx naming the field; tokens are required', async () => {
    const check = async (res: Response, status: number, field: RegExp) => {
      const body = (await res.json()) as { error: string; field?: string };
      assert.equal(res.status, status, JSON.stringify(body));
      assert.match(`${body.field ?? ''} ${body.error}`, field);
    };
    await check(await post('/v1/embed', { images: [Buffer.from('not an image at all').toString('base64')] }), 422, /images\[0\]/);
    await check(await post('/v1/embed', { images: Array(5).fill(b64(join(ORL, 's1', '1.pgm'))) }), 413, /limit of 4/);
    await check(await post('/v1/embed', { pictures: [] }), 400, /images/);
    await check(await post('/v1/verify', { a: b64(join(ORL, 's1', '1.pgm')) }), 400, /\bb\b/);
    await check(await post('/v1/embed', { images: ['x'] }, null), 401, /token/);
    await check(await post('/v1/embed', { images: ['x'] }, 'wrong-token-0123456789'), 401, /unknown token/);
  });

  it('concurrent requests share model batches (/metrics: batch sizes and latency)', async () => {
    const img = b64(join(ORL, 's6', '1.pgm'));
    const answers = await Promise.all(Array.from({ length: 16 }, () => post('/v1/embed', { images: [img] })));
    assert.ok(answers.every((a) => a.status === 200));
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const count = Number(/^facenet_serve_batch_size_count (\d+)/m.exec(metrics)?.[1]);
    const sum = Number(/^facenet_serve_batch_size_sum (\d+)/m.exec(metrics)?.[1]);
    assert.ok(sum / count > 1, `mean batch ${sum}/${count}: concurrent requests were not batched`);
    assert.match(metrics, /facenet_serve_request_seconds_bucket\{le="[\d.]+",route="\/v1\/embed",status="200"\}/);
  });

  it('serves a TensorFlow.js export (--model) with the checkpoint’s embeddings and threshold', async () => {
    const exported = join(t.dir, 'tfjs');
    execFileSync(process.execPath, [CLI, 'export', checkpoint, '--format', 'tfjs', '--out', exported], { stdio: 'ignore' });
    const { child: other, url: otherUrl } = await startCliService(['serve', '--model', exported, '--port', '0']);
    try {
      const body = JSON.stringify({ images: [b64(join(ORL, 's7', '1.pgm')), b64(join(ORL, 's8', '2.pgm'))] });
      const ask = async (u: string, token?: string) =>
        (
          (await (
            await fetch(`${u}/v1/embed`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
              body,
            })
          ).json()) as { embeddings: number[][] }
        ).embeddings;
      const [fromCheckpoint, fromExport] = [await ask(url, TOKEN), await ask(otherUrl)];
      const d = Math.max(...fromCheckpoint.flatMap((row, i) => row.map((v, j) => Math.abs(v - fromExport[i]![j]!))));
      assert.ok(d <= 1e-4, `max abs difference ${d}`);
      const health = (await (await fetch(`${otherUrl}/healthz`)).json()) as { threshold: number; checkpoint: { step: number } };
      assert.deepEqual([health.threshold, health.checkpoint.step], [0.5, 1]);
    } finally {
      other.kill('SIGTERM');
    }
  });

  it('serves on a GPU backend: webgpu (SwiftShader) with the tfjs engine gives the ONNX Runtime service’s embeddings', async function () {
    const env = needSoftwareGpu(this);
    const gpu = await startCliService(
      [
        'serve',
        '--checkpoint',
        checkpoint,
        '--port',
        '0',
        '--tokens-file',
        join(t.dir, 'tokens'),
        '--backend',
        'webgpu',
        '--engine',
        'tfjs',
      ],
      env,
    );
    try {
      const health = (await (await fetch(`${gpu.url}/healthz`)).json()) as { engine: string; backend: string };
      assert.deepEqual([health.engine, health.backend], ['tfjs', 'webgpu']);
      const cpuHealth = (await (await fetch(`${url}/healthz`)).json()) as { engine: string; backend: string };
      assert.deepEqual([cpuHealth.engine, cpuHealth.backend], ['onnxruntime', 'onnxruntime-cpu']);
      const images = [join(ORL, 's4', '1.pgm'), join(ORL, 's5', '2.pgm'), join(ORL, 's6', '3.pgm')].map(b64);
      const embed = async (base: string) => {
        const res = await fetch(`${base}/v1/embed`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify({ images }),
        });
        assert.equal(res.status, 200, await res.clone().text());
        return ((await res.json()) as { embeddings: number[][] }).embeddings;
      };
      const [onGpu, onCpu] = [await embed(gpu.url), await embed(url)];
      const d = Math.max(...onGpu.flatMap((row, i) => row.map((v, j) => Math.abs(v - (onCpu[i]![j] as number)))));
      assert.ok(d <= 1e-4, `max abs difference ${d}`);
    } finally {
      gpu.child.kill('SIGTERM');
    }
  });
});
