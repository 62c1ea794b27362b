import { strict as assert } from 'node:assert';
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as rawRequest } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import { Coordinator } from '@facenet/coordinator';
import { compileTrainOptions } from '@facenet/core';
import { redisKeys } from '@facenet/protocol';
import { sealMessage, deleteKeysUnder, WorkDispatch } from '@facenet/service-kit';
import { api, JobView, spawnWorker, startCluster, waitFor, waitForState, waitForRedis } from '../cluster-helpers';
import { CLI, ORL, tempDir, freePort } from '../helpers';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ADMIN = 'admin-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';

/** A raw HTTP request (fetch forbids setting Host and Origin). */
function raw(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = rawRequest({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      let data = '';
      res.on('data', (c: Buffer) => (data += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const smallSpec = (extra: object = {}) => ({
  dataset: { kind: 'folder', path: ORL },
  holdout: 10,
  worldSize: 1,
  train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 4, K: 2 }, steps: 2 },
  ...extra,
});

describe('security: the API, the queue and the data refuse what does not belong', function () {
  this.timeout(180000);
  const prefixes: string[] = [];
  let t: ReturnType<typeof tempDir>;
  before(() => (t = tempDir('facenet-security-')));
  after(async () => {
    for (const p of prefixes) await deleteKeysUnder(REDIS, p);
    t.cleanup();
  });

  async function coordinator(options: object = {}): Promise<Coordinator> {
    const prefix = `fnsec-${randomBytes(4).toString('hex')}`;
    prefixes.push(prefix);
    const c = new Coordinator({ redisUrl: REDIS, port: 0, prefix, checkpointRoot: join(t.dir, 'ckpt'), ...options }, () => undefined);
    await c.start();
    return c;
  }

  describe('API tokens', () => {
    let c: Coordinator;
    before(async () => {
      const file = join(t.dir, 'tokens');
      writeFileSync(file, `# scopes\nadmin:${ADMIN}\nread:${READ}\n`);
      c = await coordinator({ apiTokensFile: file });
    });
    after(() => c?.close());

    it('need a token for /v1, read scope to look, admin scope to change jobs; health, metrics and the page stay open', async () => {
      const status = async (method: string, path: string, token?: string, body?: unknown) => {
        const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
        if (token) headers.authorization = `Bearer ${token}`;
        return (await fetch(`${c.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })).status;
      };
      assert.equal(await status('GET', '/v1/jobs'), 401);
      assert.equal(await status('GET', '/v1/jobs', 'not-a-token-at-all-xxxxxx'), 401);
      assert.equal(await status('GET', '/v1/jobs', READ), 200);
      assert.equal(await status('POST', '/v1/jobs', READ, smallSpec()), 403);
      assert.equal(await status('POST', '/v1/jobs', ADMIN, smallSpec()), 201);
      for (const open of ['/healthz', '/metrics', '/']) assert.equal(await status('GET', open), 200, open);
    });

    it('the CLI sends its token (--token / $FACENET_TOKEN)', async () => {
      const run = promisify(execFile);
      const denied = await run(process.execPath, [CLI, 'jobs', 'list', '--api', c.url], {
        env: { ...process.env, FACENET_TOKEN: '' },
      }).catch((e: { stderr: string }) => e);
      assert.match((denied as { stderr: string }).stderr, /bearer token is required/);
      const ok = await run(process.execPath, [CLI, 'jobs', 'list', '--api', c.url, '--token', READ, '--json']);
      assert.ok(Array.isArray(JSON.parse(ok.stdout)));
    });
  });

  it('refuses to serve the API beyond loopback without tokens, unless told to run open', async () => {
    await assert.rejects(coordinator({ host: '0.0.0.0' }), /refusing to serve the API on 0\.0\.0\.0 without tokens/);
    const open = await coordinator({ host: '0.0.0.0', allowOpenApi: true });
    await open.close();
  });

  describe('cross-site requests, foreign hosts, client mistakes, limits, data roots', () => {
    let c: Coordinator;
    let jobId: string;
    before(async () => {
      c = await coordinator();
      jobId = (await api<JobView>(c.url, 'POST', '/v1/jobs', smallSpec({ worldSize: 1 }))).id; // pending: no worker here
    });
    after(() => c?.close());

    it('a cross-site text/plain POST or a foreign Origin cannot cancel a job; a foreign Host is refused', async () => {
      const port = new URL(c.url).port;
      const plain = await raw(
        c.url,
        'POST',
        `/v1/jobs/${jobId}/cancel`,
        { host: `127.0.0.1:${port}`, 'content-type': 'text/plain', origin: 'http://evil.example' },
        'x',
      );
      assert.ok([403, 415].includes(plain.status), `${plain.status} ${plain.body}`);
      const json = await raw(
        c.url,
        'POST',
        `/v1/jobs/${jobId}/cancel`,
        { host: `127.0.0.1:${port}`, 'content-type': 'application/json', origin: 'http://evil.example' },
        '{}',
      );
      assert.equal(json.status, 403);
      const noBody = await raw(c.url, 'POST', `/v1/jobs/${jobId}/cancel`, { host: `127.0.0.1:${port}` });
      assert.equal(noBody.status, 415);
      const rebinding = await raw(c.url, 'GET', '/v1/jobs', { host: `evil.example:${port}` });
      assert.equal(rebinding.status, 421);
      assert.equal((await api<JobView>(c.url, 'GET', `/v1/jobs/${jobId}`)).state, 'pending', 'the job was not cancelled');
      assert.ok(
        !/access-control-allow-origin/i.test(JSON.stringify((await fetch(`${c.url}/v1/jobs`, { headers: { origin: c.url } })).headers)),
        'no CORS grant',
      );
    });

    it('client mistakes are 4xx, not 500: malformed JSON, wrong type, too large, loose fork/resume bodies', async () => {
      const post = (path: string, body: string, type = 'application/json') =>
        fetch(`${c.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
      assert.equal((await post('/v1/jobs', '{"dataset": ')).status, 400);
      assert.equal((await post('/v1/jobs', 'dataset: x', 'application/yaml')).status, 415);
      assert.equal((await post('/v1/jobs', JSON.stringify({ name: 'x'.repeat(2 << 20) }))).status, 413);
      assert.equal((await post(`/v1/jobs/${jobId}/fork`, JSON.stringify({ steps: 5, bogus: 1 }))).status, 400);
      assert.equal((await post(`/v1/jobs/${jobId}/fork`, '[]')).status, 400);
      assert.equal((await post(`/v1/jobs/${jobId}/resume`, JSON.stringify({ fromStep: 'x' }))).status, 400);
    });

    it('/healthz answers within 200 ms while the largest allowed synthetic spec is admitted (2M images, holdout 50,000): admission runs off the event loop', async () => {
      let worst = 0;
      let probes = 0;
      let probing = true;
      const probe = (async () => {
        while (probing) {
          const t0 = performance.now();
          assert.equal((await fetch(`${c.url}/healthz`)).status, 200);
          worst = Math.max(worst, performance.now() - t0);
          probes++;
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const t0 = performance.now();
      const res = await fetch(`${c.url}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ dataset: { kind: 'synthetic', identities: 100_000, imagesPerIdentity: 20 }, holdout: 50_000, worldSize: 1 }),
      });
      const admitMs = performance.now() - t0;
      probing = false;
      await probe;
      assert.ok([201, 400].includes(res.status), `answered ${res.status}: ${await res.text()}`);
      assert.ok(probes >= 3, `${probes} probes during ${admitMs.toFixed(0)} ms of admission`);
      assert.ok(worst < 200, `/healthz answered within ${worst.toFixed(0)} ms throughout ${admitMs.toFixed(0)} ms of admission`);
      console.log(
        `      admission of 2M synthetic images: ${admitMs.toFixed(0)} ms; /healthz worst ${worst.toFixed(0)} ms over ${probes} probes`,
      );
    });

    it('absurd numbers are refused at once and the server stays responsive (a billion synthetic identities)', async () => {
      let worst = 0;
      let probing = true;
      const probe = (async () => {
        while (probing) {
          const t0 = performance.now();
          assert.equal((await fetch(`${c.url}/healthz`)).status, 200);
          worst = Math.max(worst, performance.now() - t0);
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      const res = await fetch(`${c.url}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ dataset: { kind: 'synthetic', identities: 1_000_000_000 } }),
      });
      await new Promise((r) => setTimeout(r, 300));
      probing = false;
      await probe;
      assert.equal(res.status, 400);
      assert.ok(worst < 200, `/healthz answered within ${worst.toFixed(0)} ms throughout`);
      const absurd = [
        ['train.steps', { steps: 1e12 }],
        ['train.batch.P', { batch: { P: 1e9, K: 2 } }],
        ['train.model.embeddingDim', { model: { embeddingDim: 1e9 } }],
        ['train.optimizer.learningRate', { optimizer: { learningRate: 1e308 } }],
      ] as const;
      for (const [field, spec] of absurd) {
        const r = await fetch(`${c.url}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(smallSpec({ train: { ...smallSpec().train, ...spec } })),
        });
        assert.equal(r.status, 400);
        assert.ok(
          ((await r.json()) as { issues: { path: string }[] }).issues.some((i) => i.path === field),
          field,
        );
      }
    });

    it('datasets outside the data roots are refused with one message, whether the path exists or not', async () => {
      const answer = async (path: string) => {
        const r = await fetch(`${c.url}/v1/jobs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(smallSpec({ dataset: { kind: 'folder', path } })),
        });
        assert.equal(r.status, 400);
        const issue = ((await r.json()) as { issues: { path: string; message: string }[] }).issues[0]!;
        assert.equal(issue.path, 'dataset.path');
        return issue.message.replace(path, '<path>');
      };
      const existing = await answer('/usr/share');
      const missing = await answer('/no/such/folder/anywhere');
      assert.equal(existing, missing);
      assert.match(existing, /not inside the data roots/);
      assert.match(await answer(join(ORL, '..', '..', '..')), /not inside the data roots/, 'no escape with ..');
    });
  });

  it('a worker refuses a forged shard job from Redis: never executed, answered as refused, nothing written', async () => {
    const prefix = `fnsec-${randomBytes(4).toString('hex')}`;
    prefixes.push(prefix);
    const ckptRoot = join(t.dir, 'worker-ckpt');
    const worker = spawnWorker({ prefix, checkpointRoot: ckptRoot }, { FACENET_WORKER_ID: 'target' });
    const redis = new IORedis(REDIS, { maxRetriesPerRequest: null });
    try {
      await waitFor(async () => (await redis.exists(redisKeys(prefix).worker('target'))) === 1, 30000, 'the worker to register');
      const dispatch = new WorkDispatch(redis, redisKeys(prefix).workResults, () => undefined);
      const evil = join(t.dir, 'evil-checkpoint');
      const forged = {
        jobId: 'forged',
        step: 0,
        rank: 0,
        generation: 1,
        ring: { size: 1, predecessor: '127.0.0.1:1' },
        shards: [[{ key: '/etc/hostname', label: 0 }]],
        dataset: { kind: 'folder', path: '/etc', cropFraction: 1, exclude: [] },
        train: { batch: { P: 2, K: 2 } },
        restoreFrom: null,
        trustHeld: false,
        checkpointDir: evil,
        checksum: false,
        learningRateScale: 1,
        collectiveSecret: 'x',
      };
      await dispatch.send(redisKeys(prefix).workerInbox('target'), 'forged-item', forged);
      await assert.rejects(dispatch.answer('forged-item', 30000), (err: Error) => {
        assert.equal(err.name, 'RejectedJobError');
        assert.match(err.message, /refused job for forged: dataset\.path \/etc is not inside the data roots/);
        return true;
      });
      assert.ok(!existsSync(evil), 'no checkpoint was written');
      await dispatch.close();
    } finally {
      worker.kill('SIGKILL');
      redis.disconnect();
    }
  });

  it('a worker with FACENET_WORK_KEY runs only items signed with it: unsigned and wrongly signed ones are refused unrun and counted', async () => {
    const prefix = `fnsec-${randomBytes(4).toString('hex')}`;
    prefixes.push(prefix);
    const key = randomBytes(32).toString('hex');
    const worker = spawnWorker(
      { prefix, checkpointRoot: join(t.dir, 'signed-ckpt') },
      { FACENET_WORKER_ID: 'signed', FACENET_WORK_KEY: key },
    );
    const redis = new IORedis(REDIS, { maxRetriesPerRequest: null });
    const inbox = redisKeys(prefix).workerInbox('signed');
    const unsigned = new WorkDispatch(redis, redisKeys(prefix).workResults, () => undefined);
    const otherKey = new WorkDispatch(redis, redisKeys(prefix).workResults, () => undefined, Buffer.from(randomBytes(32).toString('hex')));
    const signed = new WorkDispatch(redis, redisKeys(prefix).workResults, () => undefined, Buffer.from(key));
    try {
      await waitFor(async () => (await redis.exists(redisKeys(prefix).worker('signed'))) === 1, 30000, 'the worker to register');
      // A state query with a checkpointDir would make the worker write its weights: the most a forged item could ask.
      const query = { kind: 'state', jobId: 'victim', checkpointDir: join(t.dir, 'signed-ckpt', 'victim', 'step-000041') };
      for (const [dispatch, id, why] of [
        [unsigned, 'unsigned-item', 'unsigned'],
        [otherKey, 'other-key-item', 'bad signature'],
      ] as const) {
        await dispatch.send(inbox, id, query);
        await assert.rejects(dispatch.answer(id, 30000), (err: Error) => {
          assert.equal(err.name, 'RejectedJobError');
          assert.match(err.message, new RegExp(`refused ${id}: ${why}; this worker runs only work signed with its FACENET_WORK_KEY`));
          return true;
        });
      }
      await signed.send(inbox, 'signed-item', { kind: 'state', jobId: 'victim' });
      assert.equal(await signed.answer('signed-item', 30000), null, 'a signed query runs (the worker holds nothing)');
      // The abort channel too: a forged interrupt would stop every rank of a running job's step.
      const channel = redisKeys(prefix).abortChannel;
      const abort = JSON.stringify({ jobId: 'victim', generation: 3, interrupt: true, at: Date.now() });
      await redis.publish(channel, abort);
      await redis.publish(channel, sealMessage(Buffer.from(randomBytes(32).toString('hex')), channel, abort));
      const old = JSON.stringify({ jobId: 'victim', generation: 3, at: Date.now() - 3_600_000 });
      await redis.publish(channel, sealMessage(Buffer.from(key), channel, old));
      const info = JSON.parse((await redis.get(redisKeys(prefix).worker('signed'))) as string) as { metrics: string };
      let metrics = '';
      await waitFor(
        async () => /reason="abort stale"\} 1/.test((metrics = await (await fetch(`http://${info.metrics}/metrics`)).text())),
        10000,
        'the worker to count the forged aborts',
      );
      assert.match(metrics, /facenet_worker_refused_items_total\{reason="unsigned"\} 1/);
      assert.match(metrics, /facenet_worker_refused_items_total\{reason="bad signature"\} 1/);
      assert.match(metrics, /facenet_worker_refused_items_total\{reason="abort unsigned"\} 1/);
      assert.match(metrics, /facenet_worker_refused_items_total\{reason="abort bad signature"\} 1/);
    } finally {
      for (const d of [unsigned, otherKey, signed]) await d.close();
      worker.kill('SIGKILL');
      redis.disconnect();
    }
  });

  it("a worker opens only its dataset's own images and writes only to its job's folder: forged keys, links out of the dataset, another job's folder, a linked weights file", async () => {
    const prefix = `fnsec-${randomBytes(4).toString('hex')}`;
    prefixes.push(prefix);
    const ckptRoot = join(t.dir, 'keys-ckpt');
    const people = join(t.dir, 'data', 'people');
    const outside = join(t.dir, 'outside');
    for (const d of [join(people, 'alice'), join(people, 'bob'), join(outside, 'person')]) mkdirSync(d, { recursive: true });
    for (const n of [1, 2, 3, 4]) copyFileSync(join(ORL, 's1', `${n}.pgm`), join(people, 'alice', `${n}.pgm`));
    copyFileSync(join(ORL, 's2', '1.pgm'), join(people, 'bob', '1.pgm'));
    copyFileSync(join(ORL, 's3', '1.pgm'), join(outside, 'secret.pgm'));
    copyFileSync(join(ORL, 's3', '2.pgm'), join(outside, 'person', '1.pgm'));
    symlinkSync(join(outside, 'person'), join(people, 'linked')); // a person folder linking out
    symlinkSync(join(outside, 'secret.pgm'), join(people, 'bob', 'x.pgm')); // an image linking out
    const worker = spawnWorker(
      { prefix, checkpointRoot: ckptRoot },
      { FACENET_WORKER_ID: 'keys', FACENET_DATA_ROOTS: join(t.dir, 'data') },
    );
    const redis = new IORedis(REDIS, { maxRetriesPerRequest: null });
    const dispatch = new WorkDispatch(redis, redisKeys(prefix).workResults, () => undefined);
    const job = (jobId: string, extra: object) => ({
      jobId,
      step: 0,
      rank: 0,
      generation: 1,
      ring: { size: 1, predecessor: '127.0.0.1:1' },
      dataset: { kind: 'folder', path: people, cropFraction: 1, exclude: [] },
      train: compileTrainOptions({ model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 2, K: 4 } }),
      restoreFrom: null,
      trustHeld: false,
      checkpointDir: join(ckptRoot, jobId),
      checksum: false,
      learningRateScale: 1,
      collectiveSecret: 'x',
      ...extra,
    });
    let items = 0;
    /** Sends one item to the worker's inbox: its answer, or its failure. */
    const run = async (data: object): Promise<{ value?: unknown; error?: Error }> => {
      const id = `forged-${items++}`;
      await dispatch.send(redisKeys(prefix).workerInbox('keys'), id, data);
      return dispatch.answer(id, 60000).then(
        (value) => ({ value }),
        (error: Error) => ({ error }),
      );
    };
    try {
      await waitFor(async () => (await redis.exists(redisKeys(prefix).worker('keys'))) === 1, 30000, 'the worker to register');
      const forgedKeys = [
        '/etc/hostname',
        join(outside, 'secret.pgm'),
        '/nonexistent/y.pgm',
        join(people, 'linked', '1.pgm'),
        join(people, 'bob', 'x.pgm'),
      ];
      const keys = await run(
        job('forged-keys', {
          shards: [
            [
              ...[1, 2].map((n) => ({ identity: 0, key: join(people, 'alice', `${n}.pgm`) })),
              ...forgedKeys.map((key) => ({ identity: 1, key })),
            ],
          ],
        }),
      );
      assert.equal(keys.error, undefined, keys.error?.message);
      const skipped = (keys.value as { skipped: { key: string; reason: string }[] }).skipped;
      assert.deepEqual(skipped.map((s) => s.key).sort(), [...forgedKeys].sort(), "every forged key skipped, alice's images read");
      assert.deepEqual(
        [...new Set(skipped.map((s) => s.reason.replace(s.key, '<key>')))],
        ['cannot decode <key>: not an image of this dataset'],
        'one reason whether the file exists or not',
      );
      // Writing into another job's folder (inside the checkpoint root) is refused.
      const other = await run(job('forged-other', { checkpointDir: join(ckptRoot, 'someone-else'), shards: [[]] }));
      assert.match(other.error?.message ?? 'it ran', /checkpointDir .*someone-else is not this job's folder/);
      assert.ok(!existsSync(join(ckptRoot, 'someone-else')));
      // A checkpoint whose weights file is a link (here to another job's weights) is not loaded.
      const real = join(ckptRoot, 'forged-keys', 'step-000001');
      const linked = join(ckptRoot, 'linked-ckpt', 'step-000001');
      mkdirSync(linked, { recursive: true });
      copyFileSync(join(real, 'manifest.json'), join(linked, 'manifest.json'));
      symlinkSync(join(real, 'weights.bin'), join(linked, 'weights.bin'));
      const restored = await run(job('linked-ckpt', { step: 1, restoreFrom: linked, shards: [[]] }));
      assert.match(restored.error?.message ?? 'it ran', /weights\.bin is a symbolic link/);
    } finally {
      await dispatch.close();
      worker.kill('SIGKILL');
      redis.disconnect();
    }
  });

  it('runs against a Redis that requires a password (REDIS_URL carries it); a wrong one fails at start, clearly', async () => {
    const port = await freePort();
    const password = randomBytes(12).toString('hex');
    const server: ChildProcess = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--requirepass',
        password,
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: 'ignore' },
    );
    try {
      const url = `redis://:${password}@127.0.0.1:${port}`;
      await waitForRedis(url);
      const cluster = await startCluster(1, join(t.dir, 'pw-ckpt'), { REDIS_URL: url }, ['--redis', url, '--no-miner']);
      try {
        const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', smallSpec());
        await waitForState(cluster.url, job.id, ['completed'], 120000);
      } finally {
        cluster.proc.kill('SIGTERM');
        await new Promise((r) => cluster.proc.once('exit', r));
      }
      const wrong = new Coordinator({ redisUrl: `redis://:wrong@127.0.0.1:${port}`, port: 0, prefix: 'pw' }, () => undefined);
      await assert.rejects(wrong.start(), /WRONGPASS|NOAUTH|invalid password/i);
      await wrong.close().catch(() => undefined);
    } finally {
      server.kill('SIGKILL');
    }
  });
});
