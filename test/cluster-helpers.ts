import { ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import { JobRecord, redisKeys } from '@facenet/protocol';
import { deleteKeysUnder } from '@facenet/service-kit';
import { join } from 'node:path';
import { CLI, REPO } from './helpers';

export interface TestCluster {
  url: string;
  prefix: string;
  checkpointRoot: string;
  /** What a worker started outside `facenet up` needs to join its ring (the mTLS files, when on). */
  workerEnv: Record<string, string>;
  proc: ChildProcess;
  logs: string[];
  stop(): Promise<void>;
}

/** `facenet up` as a real child process on a random Redis prefix and a free API port. */
export async function startCluster(
  workers: number,
  checkpointRoot: string,
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<TestCluster> {
  const prefix = `fntest-${randomBytes(4).toString('hex')}`;
  const proc = spawn(
    process.execPath,
    [CLI, 'up', '--workers', String(workers), '--port', '0', '--prefix', prefix, '--checkpoint-root', checkpointRoot, '--json', ...args],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: string[] = [];
  createInterface({ input: proc.stderr! }).on('line', (l) => logs.push(l));
  const workerEnv: Record<string, string> = {};
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      if (!l.startsWith('{"event":"ready"')) return;
      const ready = JSON.parse(l) as { url: string; ringTls: { ca: string; cert: string; key: string } | null };
      if (ready.ringTls)
        Object.assign(workerEnv, {
          FACENET_TLS_CA: ready.ringTls.ca,
          FACENET_TLS_CERT: ready.ringTls.cert,
          FACENET_TLS_KEY: ready.ringTls.key,
        });
      resolve(ready.url);
    });
    proc.on('exit', (code) => reject(new Error(`facenet up exited (${code}):\n${logs.join('\n')}`)));
  }).catch(async (err: Error) => {
    // It never became ready: whatever it wrote under its prefix goes too.
    await deleteKeysUnder(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix);
    throw err;
  });
  const stop = async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
    await deleteKeysUnder(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix);
  };
  // Workers register a moment after the coordinator is ready. A cluster that never gets there is
  // stopped here: a failed `before` hook has no cluster to stop, and would leave it running.
  try {
    await waitFor(async () => (await api<unknown[]>(url, 'GET', '/v1/workers')).length === workers, 30000, 'workers to register');
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, prefix, proc, logs, checkpointRoot, workerEnv, stop };
}

/** A worker process of its own (not one of `facenet up`'s), joining the cluster's prefix and checkpoint root. */
export function spawnWorker(
  cluster: { prefix: string; checkpointRoot: string; workerEnv?: Record<string, string> },
  env: Record<string, string> = {},
): ChildProcess {
  const main = join(REPO, 'packages', 'worker', 'dist', 'main.js');
  const own = { FACENET_PREFIX: cluster.prefix, FACENET_CHECKPOINT_ROOT: cluster.checkpointRoot, ...cluster.workerEnv };
  return spawn(process.execPath, [main], { env: { ...process.env, ...own, ...env }, stdio: ['ignore', 'ignore', 'ignore'] });
}

/** The coordinator as its own process (not under `facenet up`, which would stop with it); resolves with its URL. */
export function spawnCoordinator(
  prefix: string,
  checkpointRoot: string,
  logs: string[],
  env: Record<string, string> = {},
): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [join(REPO, 'packages', 'coordinator', 'dist', 'main.js')], {
    env: { ...process.env, FACENET_PREFIX: prefix, FACENET_CHECKPOINT_ROOT: checkpointRoot, FACENET_API_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  createInterface({ input: proc.stderr! }).on('line', (l) => logs.push(l));
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      if (l.startsWith('{"event":"ready"')) resolve({ proc, url: (JSON.parse(l) as { url: string }).url });
    });
    proc.on('exit', (code) => reject(new Error(`the coordinator exited (${code}):\n${logs.join('\n')}`)));
  });
}

/** The evaluator as its own process on a cluster's prefix. */
export function spawnEvaluator(cluster: { prefix: string }, env: Record<string, string> = {}): ChildProcess {
  const main = join(REPO, 'packages', 'evaluator', 'dist', 'main.js');
  return spawn(process.execPath, [main], {
    env: { ...process.env, FACENET_PREFIX: cluster.prefix, ...env },
    stdio: ['ignore', 'ignore', 'ignore'],
  });
}

/** A REST call as the CLI makes it: writes carry a JSON body (the API refuses them otherwise). */
export async function api<T>(url: string, method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const payload = body ?? (method === 'GET' ? undefined : {});
  const headers: Record<string, string> = payload === undefined ? {} : { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${url}${path}`, { method, headers, body: payload === undefined ? undefined : JSON.stringify(payload) });
  const data = (await res.json()) as T;
  if (!res.ok)
    throw Object.assign(new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(data)}`), { status: res.status, data });
  return data;
}

export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export type { JobView } from '@facenet/protocol';
import type { JobView } from '@facenet/protocol';

export async function waitForState(url: string, id: string, states: string[], timeoutMs = 120000): Promise<JobView> {
  let job: JobView | undefined;
  await waitFor(
    async () => {
      job = await api<JobView>(url, 'GET', `/v1/jobs/${id}`);
      if (job.state === 'failed' && !states.includes('failed')) throw new Error(`job ${id} failed: ${job.error}`);
      return states.includes(job.state);
    },
    timeoutMs,
    `job ${id} to reach ${states.join('/')}`,
  );
  return job!;
}

/** Waits until a Redis at `url` answers PING (a redis-server the test just spawned). */
export async function waitForRedis(url: string, timeoutMs = 5000): Promise<void> {
  const probe = new IORedis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
  probe.on('error', () => undefined);
  try {
    await waitFor(
      () =>
        probe.ping().then(
          () => true,
          () => false,
        ),
      timeoutMs,
      'redis-server',
    );
  } finally {
    probe.disconnect();
  }
}

/**
 * Writes `n` finished jobs into a running cluster's Redis, as weeks of use would leave them: the
 * template is a real job the cluster runs (3 steps), its history padded to `historyLength` step
 * records; createdAt a minute apart, older than the template, every fourth one failed. Returns the
 * ids, newest first.
 */
export async function seedFinishedJobs(cluster: TestCluster, n: number, historyLength = 200): Promise<string[]> {
  const real = await api<JobView>(cluster.url, 'POST', '/v1/jobs', {
    dataset: { kind: 'synthetic', identities: 12, imagesPerIdentity: 4 },
    train: { model: { architecture: 'tiny', imageSize: 24 }, batch: { P: 4, K: 2 }, steps: 3 },
  });
  await waitForState(cluster.url, real.id, ['completed'], 60_000);
  const redis = new IORedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  try {
    const keys = redisKeys(cluster.prefix);
    const template = JSON.parse((await redis.get(keys.job(real.id))) as string) as JobRecord;
    const step = JSON.parse((await redis.lindex(keys.jobHistory(real.id), 0)) as string) as object;
    const history = Array.from({ length: historyLength }, (_, i) => JSON.stringify({ ...step, step: i }));
    const ids: string[] = [];
    for (let start = 0; start < n; start += 500) {
      const m = redis.multi();
      for (let i = start; i < Math.min(n, start + 500); i++) {
        const id = `job-seeded-${String(i).padStart(6, '0')}`;
        const at = Date.now() - (i + 10) * 60_000;
        const state = i % 4 === 0 ? 'failed' : 'completed';
        m.set(keys.job(id), JSON.stringify({ ...template, id, state, createdAt: new Date(at).toISOString() }));
        m.zadd(keys.jobs, at, id)
          .zadd(keys.jobsInState(state), at, id)
          .rpush(keys.jobHistory(id), ...history);
        ids.push(id);
      }
      await m.exec();
    }
    return ids;
  } finally {
    redis.disconnect();
  }
}

/**
 * How far two sets of weights are apart: the mean and the largest absolute difference. After the
 * world changes (W=3 to 2) the sums are taken in another order, and Adam turns a near-zero
 * gradient whose sign flips into a step of up to the learning rate (0.002) for that parameter:
 * a few weights may differ by ~1e-3 with nothing wrong. A lost or doubled step moves nearly every
 * weight by about the learning rate, so the mean tells the two apart where the maximum cannot.
 */
export function weightDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): { mean: number; max: number } {
  let max = 0;
  let sum = 0;
  let n = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i]! - y[i]!);
      max = Math.max(max, d);
      sum += d;
      n++;
    }
  }
  return { mean: sum / n, max };
}
