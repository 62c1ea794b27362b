import { strict as assert } from 'node:assert';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { api, JobView, startCluster, TestCluster, waitFor, waitForRedis } from '../cluster-helpers';
import { freePort, ORL, tempDir } from '../helpers';
import { needTools } from '../requirements';

/** A redis-server on a fixed port (restarted on the same one), its data in `dir`. */
class OwnRedis {
  proc: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly dir: string,
    readonly aof: boolean,
  ) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir, '--maxmemory-policy', 'noeviction'];
    args.push('--appendonly', this.aof ? 'yes' : 'no', '--appendfsync', 'always');
    this.proc = spawn('redis-server', args, { stdio: 'ignore' });
    await waitForRedis(this.url);
  }
  /** SHUTDOWN NOSAVE, as an operator's restart of a Redis without persistence would be. */
  async stop(): Promise<void> {
    const exited = new Promise((r) => this.proc?.once('exit', r));
    const c = new IORedis(this.url, { maxRetriesPerRequest: 0 });
    c.on('error', () => undefined);
    await c.call('shutdown', 'nosave').catch(() => undefined);
    c.disconnect();
    await exited;
  }
  kill(): void {
    this.proc?.kill('SIGKILL');
  }
}

const spec = {
  dataset: { kind: 'folder', path: ORL },
  holdout: 10,
  worldSize: 2,
  checksumEvery: 0,
  train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 8, K: 4 }, virtualShards: 2, steps: 400, checkpointEvery: 50 },
};

/** Lines each service of `facenet up` wrote (prefix "worker-0     | ..."), counted from index `from`. */
function linesByService(logs: string[], from: number): Map<string, string[]> {
  const by = new Map<string, string[]>();
  for (const l of logs.slice(from)) {
    const m = /^(\S+)\s+\| (.*)$/.exec(l);
    if (!m) continue;
    by.set(m[1]!, [...(by.get(m[1]!) ?? []), m[2]!]);
  }
  return by;
}

describe('Redis outages and lost Redis state, on real processes (facenet up)', function () {
  this.timeout(180000);
  let t: ReturnType<typeof tempDir>;
  let redis: OwnRedis | undefined;
  let cluster: TestCluster | undefined;

  before(function () {
    needTools(this, 'redis-server');
  });
  beforeEach(() => {
    t = tempDir('facenet-outage-');
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && cluster) console.log(cluster.logs.slice(-80).join('\n'));
    if (cluster?.proc.exitCode === null) {
      cluster.proc.kill('SIGTERM');
      await new Promise((r) => cluster!.proc.once('exit', r));
    }
    redis?.kill();
    cluster = undefined;
    redis = undefined;
    t.cleanup();
  });

  async function up(aof: boolean): Promise<{ cluster: TestCluster; job: JobView }> {
    const dir = join(t.dir, 'redis');
    mkdirSync(dir);
    redis = new OwnRedis(await freePort(), dir, aof);
    await redis.start();
    cluster = await startCluster(2, join(t.dir, 'ckpt'), { REDIS_URL: redis.url }, ['--no-miner', '--no-evaluator', '--redis', redis.url]);
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec);
    await waitFor(async () => (await api<JobView>(cluster!.url, 'GET', `/v1/jobs/${job.id}`)).step >= 3, 60000, 'a few steps');
    return { cluster, job };
  }

  it('a 1 s outage of a persistent Redis: at most a few log lines per service, no stack traces, and the job goes on', async () => {
    const { cluster, job } = await up(true);
    const from = cluster.logs.length;
    redis!.kill(); // SIGKILL: AOF with fsync always keeps every write
    await new Promise((r) => setTimeout(r, 1000));
    await redis!.start();
    const stepAfter = (await api<JobView>(cluster.url, 'GET', `/v1/jobs/${job.id}`).catch(() => ({ step: 0 }))).step;
    await waitFor(
      async () => (await api<JobView>(cluster.url, 'GET', `/v1/jobs/${job.id}`)).step >= stepAfter + 5,
      90000,
      'training to go on after the outage',
    );
    const by = linesByService(cluster.logs, from);
    const noisy = [...by].map(([s, lines]) => [s, lines.filter((l) => !/ step \d+ rank \d+\/\d+: loss /.test(l))] as const);
    for (const [service, lines] of noisy) {
      assert.ok(lines.length <= 8, `${service} wrote ${lines.length} lines for a 1 s outage:\n${lines.join('\n')}`);
      assert.ok(!lines.some((l) => /^\s+at /.test(l)), `${service} printed a stack trace:\n${lines.join('\n')}`);
    }
  });

  it('Redis restarted without persistence: /healthz answers 503 with the reason, and the coordinator exits 3 within seconds', async () => {
    const { cluster } = await up(false);
    await redis!.stop();
    await redis!.start(); // empty: the coordinator's epoch key, the job records and the queues are gone
    const t0 = Date.now();
    let sawReason = '';
    await waitFor(
      async () => {
        const res = await fetch(`${cluster.url}/healthz`).catch(() => undefined);
        if (res?.status === 503) sawReason = ((await res.json()) as { error: string }).error;
        return sawReason !== '' || cluster.logs.some((l) => /coordinator\s+\| exited/.test(l));
      },
      20000,
      '/healthz to answer 503',
    );
    assert.match(sawReason, /Redis lost this coordinator's state.*appendonly/);
    await waitFor(async () => cluster.logs.some((l) => /coordinator\s+\| exited/.test(l)), 20000, 'the coordinator to exit');
    const exit = cluster.logs.find((l) => /coordinator\s+\| exited/.test(l))!;
    assert.match(exit, /exited \(3\)/);
    assert.ok(Date.now() - t0 < 15000, `exited ${Date.now() - t0} ms after the restart`);
    const coordinatorLines = linesByService(cluster.logs, 0).get('coordinator') ?? [];
    assert.ok(!coordinatorLines.some((l) => /^\s+at /.test(l)), 'no stack traces');
  });
});
