import { strict as assert } from 'node:assert';
import { spawn, ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import IORedis from 'ioredis';
import { Coordinator } from '@facenet/coordinator';
import { logRedisErrors } from '@facenet/protocol';
import { waitFor } from '../cluster-helpers';

const freePort = () => new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address() as { port: number };
    s.close(() => resolve(port));
  });
});

/** A redis-server of the test's own (it gets flushed and restarted). */
async function privateRedis(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  const probe = new IORedis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  probe.on('error', () => undefined);
  await waitFor(async () => probe.ping().then(() => true, () => false), 5000, 'redis-server');
  probe.disconnect();
  return { url, proc };
}

describe('the coordinator notices when Redis loses its state or its lock', function () {
  this.timeout(30000);
  let redis: { url: string; proc: ChildProcess };
  let admin: IORedis;
  beforeEach(async () => {
    redis = await privateRedis();
    admin = new IORedis(redis.url);
    admin.on('error', () => undefined);
  });
  afterEach(() => {
    admin.disconnect();
    redis.proc.kill('SIGKILL');
  });

  async function started(): Promise<{ c: Coordinator; lines: string[]; fatal: string[] }> {
    const lines: string[] = [];
    const fatal: string[] = [];
    const c = new Coordinator({ redisUrl: redis.url, port: 0, tickMs: 50, prefix: 'loss' }, (l) => lines.push(l), (r) => fatal.push(r));
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
