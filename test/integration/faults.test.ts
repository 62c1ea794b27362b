import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { Coordinator } from '@facenet/coordinator';
import { api, JobView, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { CLI, ORL, tempDir, freePort } from '../helpers';
import { needTools } from '../requirements';

describe('faults', function () {
  this.timeout(300000);

  describe('a worker killed mid-job', () => {
    afterEach(function () {
      if (this.currentTest?.state === 'failed') console.log(cluster.logs.slice(-40).join('\n'));
    });
    let t: ReturnType<typeof tempDir>;
    let cluster: TestCluster;
    before(async () => {
      t = tempDir('facenet-fault-');
      cluster = await startCluster(2, join(t.dir, 'ckpt'), {}, ['--no-miner']);
    });
    after(async () => {
      await cluster?.stop();
      t.cleanup();
    });

    it('with no survivor holding the weights, continues on another worker from the last checkpoint and marks the undone steps', async () => {
      const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', {
        dataset: { kind: 'folder', path: ORL },
        holdout: 10,
        worldSize: 1,
        train: {
          model: { architecture: 'tiny', imageSize: 32 },
          batch: { P: 8, K: 5 },
          virtualShards: 4,
          steps: 30,
          checkpointEvery: 5,
          seed: 5,
        },
      });
      await waitFor(async () => (await api<JobView>(cluster.url, 'GET', `/v1/jobs/${job.id}`)).step >= 7, 120000, 'step 7');
      const workers = await api<{ pid: number; assignment: { job: string; rank: number } | null }[]>(cluster.url, 'GET', '/v1/workers');
      const victim = workers.find((w) => w.assignment?.job === job.id)!;
      process.kill(victim.pid, 'SIGKILL');
      const done = await waitForState(cluster.url, job.id, ['completed'], 240000);
      assert.equal(done.step, 30);
      assert.equal(done.world.size, 1, 'finished on the other worker');
      const f = done.faults[0]!;
      assert.equal(f.recovery, 'checkpoint');
      assert.equal(f.resumedAt! % 5, 0, 'resumed at a checkpoint');
      assert.equal(f.stepsLost, f.step - f.resumedAt!);
      const history = await api<{ step: number; replay?: boolean; rolledBack?: boolean }[]>(
        cluster.url,
        'GET',
        `/v1/jobs/${job.id}/history`,
      );
      const undone = history.filter((h) => h.rolledBack).map((h) => h.step);
      const replayed = history.filter((h) => h.replay).map((h) => h.step);
      assert.deepEqual(undone, replayed, 'each undone step is replayed once');
      assert.equal(undone.length, f.stepsLost);
      assert.deepEqual(
        history.filter((h) => !h.rolledBack).map((h) => h.step),
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
      // No miner runs: checkpoint events stay bounded, the dropped ones recorded as skipped.
      const redis = new IORedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
      try {
        const waiting = await redis.lrange(`${cluster.prefix}-bull:checkpoints:wait`, 0, -1);
        assert.ok(waiting.length > 0 && waiting.length <= 3, `${waiting.length} events waiting`);
        const skipped = (await redis.lrange(`${cluster.prefix}:plans:${job.id}:skipped`, 0, -1)).map(Number);
        assert.ok(skipped.length >= 3 && skipped.every((s) => s < 30), `skipped ${skipped}`);
      } finally {
        redis.disconnect();
      }
    });
  });

  describe('no Redis answering', () => {
    it('facenet up starts a private redis-server, and stops it on exit', async function () {
      needTools(this, 'redis-server');
      const port = await freePort();
      const up = spawn(
        process.execPath,
        [CLI, 'up', '--workers', '1', '--no-miner', '--port', '0', '--redis', `redis://127.0.0.1:${port}`, '--json'],
        { stdio: ['ignore', 'pipe', 'ignore'] },
      );
      const ready = await new Promise<{ redis: string; url: string }>((resolve, reject) => {
        let buf = '';
        up.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          const line = buf.split('\n').find((l) => l.startsWith('{"event":"ready"'));
          if (line) resolve(JSON.parse(line) as { redis: string; url: string });
        });
        up.on('exit', (code) => reject(new Error(`facenet up exited ${code}`)));
      });
      assert.notEqual(ready.redis, `redis://127.0.0.1:${port}`);
      const privatePort = Number(new URL(ready.redis).port);
      assert.ok((await api<{ ok: boolean }>(ready.url, 'GET', '/healthz')).ok);
      up.kill('SIGTERM');
      await new Promise((r) => up.once('exit', r));
      const refused = await new Promise<boolean>((resolve) => {
        const sock = connect(privatePort, '127.0.0.1');
        sock.on('connect', () => {
          sock.destroy();
          resolve(false);
        });
        sock.on('error', () => resolve(true));
      });
      assert.ok(refused, 'the private Redis is gone');
    });
  });

  describe('Redis that may evict', () => {
    let redis: ReturnType<typeof spawn> | undefined;
    let url = '';
    before(async function () {
      needTools(this, 'redis-server');
      const port = await freePort();
      redis = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'allkeys-lru'],
        { stdio: 'ignore' },
      );
      const ok = await new Promise<boolean>((resolve) => {
        redis!.on('error', () => resolve(false));
        setTimeout(() => resolve(true), 500);
      });
      if (!ok) throw new Error('redis-server did not start');
      url = `redis://127.0.0.1:${port}`;
    });
    after(() => redis?.kill());

    it('stops the coordinator at start with an explanation', async () => {
      const c = new Coordinator({ redisUrl: url, port: 0 }, () => undefined);
      await assert.rejects(c.start(), /maxmemory-policy is 'allkeys-lru': the cluster needs 'noeviction'/);
      await c.close();
      const lines: string[] = [];
      const lenient = new Coordinator({ redisUrl: url, port: 0, requireNoeviction: false }, (l) => lines.push(l));
      await lenient.start();
      assert.ok(lines.some((l) => l.includes('WARNING') && l.includes('noeviction')));
      await lenient.close();
    });
  });
});
