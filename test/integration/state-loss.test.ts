import { strict as assert } from 'node:assert';
import { spawn, ChildProcess } from 'node:child_process';
import IORedis from 'ioredis';
import { Coordinator } from '@facenet/coordinator';
import { logRedisErrors } from '@facenet/service-kit';
import { waitFor, waitForRedis } from '../cluster-helpers';
import { ORL, freePort } from '../helpers';
import { needTools } from '../requirements';

/** A redis-server of the test's own (it gets flushed and restarted). */
async function privateRedis(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  await waitForRedis(url);
  return { url, proc };
}

describe('the coordinator notices when Redis loses its state or its lock', function () {
  this.timeout(30000);
  let redis: { url: string; proc: ChildProcess };
  let admin: IORedis;
  before(function () {
    needTools(this, 'redis-server');
  });
  beforeEach(async () => {
    redis = await privateRedis();
    admin = new IORedis(redis.url);
    admin.on('error', () => undefined);
  });
  afterEach(() => {
    admin.disconnect();
    redis.proc.kill('SIGKILL');
  });

  async function started(options: object = {}): Promise<{ c: Coordinator; lines: string[]; fatal: string[] }> {
    const lines: string[] = [];
    const fatal: string[] = [];
    const c = new Coordinator(
      { redisUrl: redis.url, port: 0, tickMs: 50, prefix: 'loss', ...options },
      (l) => lines.push(l),
      (r) => fatal.push(r),
    );
    await c.start();
    return { c, lines, fatal };
  }

  it('Redis data gone (restart without persistence, FLUSHALL): stops driving, says so, /healthz 503', async () => {
    const { c, lines, fatal } = await started();
    try {
      assert.equal((await fetch(`${c.url}/healthz`)).status, 200);
      await admin.flushall();
      await waitFor(async () => fatal.length > 0, 5000, 'the coordinator to notice');
      assert.match(fatal[0]!, /Redis lost this coordinator's state/);
      assert.ok(lines.some((l) => l.includes('FATAL')));
      assert.equal(c.state, 'FAILED');
      const health = await fetch(`${c.url}/healthz`);
      assert.equal(health.status, 503);
      assert.match(((await health.json()) as { error: string }).error, /appendonly/);
      assert.match(await (await fetch(`${c.url}/metrics`)).text(), /facenet_coordinator_state_lost 1/);
    } finally {
      await c.close();
    }
  });

  it('lock taken by another: stops, so two coordinators never drive the same jobs', async () => {
    const { c, fatal } = await started();
    try {
      await admin.set('loss:coordinator:lock', 'someone-else');
      await waitFor(async () => fatal.length > 0, 5000, 'the coordinator to notice');
      assert.match(fatal[0]!, /lost the coordinator lock/);
    } finally {
      await c.close();
    }
    assert.equal(await admin.get('loss:coordinator:lock'), 'someone-else', 'it does not release a lock it no longer holds');
  });

  it('keeps its lock while the scheduler waits on workers longer than the lock lives', async () => {
    // A registered worker that never answers: starting a job on it waits out the state query.
    const info = { id: 'silent', address: '127.0.0.1:1', host: 'test', pid: 1, backend: 'wasm', startedAt: new Date().toISOString() };
    await admin.set('loss:worker:silent', JSON.stringify(info), 'PX', 60000);
    await admin.sadd('loss:workers', 'silent');
    const { c, lines, fatal } = await started({ lockMs: 1000, stateQueryTimeoutMs: 3000 });
    try {
      const spec = {
        dataset: { kind: 'folder', path: ORL },
        holdout: 10,
        worldSize: 1,
        train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 4, K: 2 }, steps: 2 },
      };
      const res = await fetch(`${c.url}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(spec),
      });
      assert.equal(res.status, 201, await res.text());
      await waitFor(async () => lines.some((l) => l.includes('state survey')), 10000, 'the state query to time out');
      assert.deepEqual(fatal, [], 'the lock outlived a scheduler tick of 3 s with a 1 s lifetime');
      assert.equal(c.state, 'RUNNING');
    } finally {
      const t0 = Date.now();
      await c.close();
      assert.ok(Date.now() - t0 < 5000, `close() ended the wait on the silent worker at once, took ${Date.now() - t0} ms`);
    }
  });

  it('an outage logs one line per error message, not one stack per reconnect', async () => {
    const lines: string[] = [];
    const client = new IORedis(redis.url, { retryStrategy: () => 20, maxRetriesPerRequest: null });
    logRedisErrors(client, (l) => lines.push(l));
    await client.ping();
    redis.proc.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1000)); // ~50 failed reconnects
    client.disconnect();
    assert.ok(lines.length >= 1 && lines.length <= 2, `${lines.length} lines: ${lines.join(' | ')}`);
    assert.match(lines[0]!, /^redis: /);
  });
});
