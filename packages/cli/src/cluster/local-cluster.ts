import { randomBytes } from 'node:crypto';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import IORedis from 'ioredis';
import { deleteKeysUnder, redactUrl } from '@facenet/service-kit';
import type { RingTls } from './ephemeral-ca';

export interface LocalClusterOptions {
  workers: number;
  /** Start the miner too. */
  miner: boolean;
  /** Start the evaluator too (scores every checkpoint: VAL/FAR, accuracy, AUC). */
  evaluator: boolean;
  redisUrl: string;
  prefix: string;
  apiPort: number;
  checkpointRoot: string;
  /** Where the evaluator writes checkpoint reports (the coordinator serves them). */
  reportRoot: string;
  backend?: string;
  /** Delete every Redis key under the prefix when the cluster stops (a demo leaves nothing behind). */
  removeKeysOnStop?: boolean;
  /** Run the workers' ring in plaintext instead of mutual TLS with an ephemeral CA (the default). */
  insecureRing?: boolean;
  log: (line: string) => void;
  /**
   * Called once when the coordinator exits while the cluster runs (Redis lost its state, a crash):
   * nothing can train without it, so the caller stops the cluster and exits non-zero.
   */
  onCoordinatorExit?: (reason: string) => void;
}

/** Restart backoff of a crashed worker, miner or evaluator: 1 s, doubling to 30 s (a pod's CrashLoopBackOff, shorter). */
export const RESTART_BACKOFF_MS = { first: 1000, max: 30_000 };
/** A child that ran this long before exiting starts its backoff over. */
const STABLE_MS = 60_000;

const mainOf = (pkg: string) => join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'main.js');

async function redisAnswers(url: string): Promise<boolean> {
  const r = new IORedis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.ping();
    return true;
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Forwards a child's output lines to the log, each prefixed with the child's name. */
function pipeLines(child: ChildProcess, name: string, log: (l: string) => void, onLine?: (l: string) => void): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      onLine?.(line);
      if (!line.startsWith('{"event"')) log(`${name.padEnd(12)} | ${line}`);
    });
  }
}

/**
 * Redis (when none answers, a private redis-server on a free port), the coordinator, N workers
 * the miner and the evaluator as child processes of this one, supervised as a pod's
 * restartPolicy OnFailure would: a worker, the miner or the evaluator that crashes or is killed is
 * started again under the same name after a backoff (one drained by SIGTERM stays stopped); the coordinator's exit ends the cluster (onCoordinatorExit).
 * `stop()` drains the others together, then the coordinator.
 */
export class LocalCluster {
  private readonly children: { name: string; proc: ChildProcess }[] = [];
  /** Restarts so far, by child name (logged, and read by tests through the log). */
  readonly restarts = new Map<string, number>();
  private redisProc: ChildProcess | undefined;
  private redisDir: string | undefined;
  redisUrl: string;
  apiUrl = '';

  constructor(private readonly o: LocalClusterOptions) {
    this.redisUrl = o.redisUrl;
  }

  get reportRoot(): string {
    return this.o.reportRoot;
  }

  private spawnNode(name: string, script: string, env: Record<string, string>, onLine?: (l: string) => void): ChildProcess {
    const proc = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    pipeLines(proc, name, this.o.log, onLine);
    proc.on('exit', (code, signal) => {
      if (!this.stopping) this.o.log(`${name.padEnd(12)} | exited (${signal ?? code})`);
    });
    this.children.push({ name, proc });
    return proc;
  }

  /** spawnNode, started again after each exit (backoff doubling while it keeps failing fast) until stop(). */
  private supervise(name: string, script: string, env: Record<string, string>, backoffMs = RESTART_BACKOFF_MS.first): void {
    const startedAt = Date.now();
    const proc = this.spawnNode(name, script, env);
    proc.once('exit', (code, signal) => {
      if (this.stopping) return;
      // restartPolicy OnFailure: a process someone stopped on purpose (SIGTERM/SIGINT, a drain that
      // exited 0, or 130 when forced by a second signal) stays stopped; a crash or a kill does not.
      if (code === 0 || code === 130 || signal === 'SIGTERM' || signal === 'SIGINT') {
        this.o.log(`${name.padEnd(12)} | stopped (${signal ?? code}); not restarted`);
        return;
      }
      const wait = Date.now() - startedAt >= STABLE_MS ? RESTART_BACKOFF_MS.first : backoffMs;
      const n = (this.restarts.get(name) ?? 0) + 1;
      this.restarts.set(name, n);
      this.o.log(`${name.padEnd(12)} | restarting in ${(wait / 1000).toFixed(0)} s (restart ${n})`);
      const i = this.children.findIndex((c) => c.proc === proc);
      if (i >= 0) this.children.splice(i, 1);
      const timer = setTimeout(() => {
        if (!this.stopping) this.supervise(name, script, env, Math.min(wait * 2, RESTART_BACKOFF_MS.max));
      }, wait);
      timer.unref();
    });
  }

  /** The ring's certificate files (absent with insecureRing): another worker joins with them as FACENET_TLS_*. */
  tls: RingTls | undefined;
  private stopping = false;

  async start(): Promise<void> {
    if (!(await redisAnswers(this.redisUrl))) {
      const which = spawnSync('sh', ['-c', 'command -v redis-server']);
      if (which.status !== 0)
        throw new Error(`no Redis answers at ${this.redisUrl} and redis-server is not on the PATH; start Redis or set REDIS_URL`);
      const port = await freePort();
      // AOF: job state lives in Redis; a restarted redis-server must come back with it.
      this.redisDir = mkdtempSync(join(tmpdir(), 'facenet-redis-'));
      this.redisProc = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'yes',
          '--appendfsync',
          'everysec',
          '--dir',
          this.redisDir,
          '--maxmemory-policy',
          'noeviction',
        ],
        { stdio: 'ignore' },
      );
      this.redisUrl = `redis://127.0.0.1:${port}`;
      for (let i = 0; i < 50 && !(await redisAnswers(this.redisUrl)); i++) await new Promise((r) => setTimeout(r, 100));
      this.o.log(`no Redis at ${redactUrl(this.o.redisUrl)}: started a private redis-server at ${this.redisUrl}`);
    }
    const common = {
      REDIS_URL: this.redisUrl,
      FACENET_PREFIX: this.o.prefix,
      FACENET_CHECKPOINT_ROOT: this.o.checkpointRoot,
      FACENET_REPORT_ROOT: this.o.reportRoot,
      ...(this.o.backend ? { FACENET_BACKEND: this.o.backend } : {}),
      // Work items signed with a key made for this cluster (unless one is given): a process that
      // can write to this Redis but was not started here cannot hand the workers a step.
      FACENET_WORK_KEY: process.env.FACENET_WORK_KEY || randomBytes(32).toString('hex'),
    };
    this.apiUrl = await new Promise<string>((resolve, reject) => {
      const proc = this.spawnNode(
        'coordinator',
        mainOf('@facenet/coordinator'),
        { ...common, FACENET_API_PORT: String(this.o.apiPort), FACENET_CHECKPOINT_ROOT: this.o.checkpointRoot },
        (line) => {
          if (line.startsWith('{"event":"ready"')) resolve((JSON.parse(line) as { url: string }).url);
        },
      );
      proc.on('exit', (code, signal) => {
        reject(new Error(`the coordinator exited during start (${code}); see its log above`));
        if (!this.stopping && this.apiUrl)
          this.o.onCoordinatorExit?.(`the coordinator exited (${signal ?? code}); nothing trains without it`);
      });
    });
    // The ring runs over mutual TLS unless told not to: a CA made for this cluster, whose key
    // is never written, signs the one certificate all local workers present.
    if (!this.o.insecureRing && !process.env.FACENET_TLS_CA) this.tls = await (await import('./ephemeral-ca.js')).makeRingTls();
    const ringTls: Record<string, string> = this.tls
      ? { FACENET_TLS_CA: this.tls.ca, FACENET_TLS_CERT: this.tls.cert, FACENET_TLS_KEY: this.tls.key }
      : {};
    for (let i = 0; i < this.o.workers; i++) this.supervise(`worker-${i}`, mainOf('@facenet/worker'), { ...common, ...ringTls });
    if (this.o.miner) this.supervise('miner', mainOf('@facenet/miner'), { ...common });
    if (this.o.evaluator) this.supervise('evaluator', mainOf('@facenet/evaluator'), { ...common, FACENET_METRICS_PORT: '0' });
  }

  /**
   * SIGTERM to the workers, the miner and the evaluator together (they drain: a worker finishes its
   * step), then to the coordinator; each gets `graceMs`, then SIGKILL. So a stop takes at most two
   * grace periods, not one per process. Then the keys if asked, then the private Redis.
   */
  async stop(graceMs = 30_000): Promise<void> {
    this.stopping = true;
    const [coordinator, ...others] = this.children;
    const drain = async ({ name, proc }: { name: string; proc: ChildProcess }) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const timeout = new Promise((r) => setTimeout(r, graceMs).unref());
      if ((await Promise.race([exited.then(() => 'exited'), timeout.then(() => 'timeout')])) === 'timeout') {
        this.o.log(`${name.padEnd(12)} | still running ${graceMs / 1000} s after SIGTERM: killed`);
        proc.kill('SIGKILL');
      }
    };
    await Promise.all(others.map(drain));
    if (coordinator) await drain(coordinator);
    if (this.o.removeKeysOnStop && !this.redisProc) {
      // a private redis-server takes its keys with it
      const n = await deleteKeysUnder(this.redisUrl, this.o.prefix).catch((e: Error) => {
        this.o.log(`could not remove the keys under '${this.o.prefix}': ${e.message}`);
        return 0;
      });
      this.o.log(`removed ${n} Redis keys under the prefix '${this.o.prefix}'`);
    }
    if (this.redisProc) {
      this.redisProc.kill('SIGTERM');
      await new Promise((r) => this.redisProc?.once('exit', r));
    }
    if (this.redisDir) rmSync(this.redisDir, { recursive: true, force: true });
    if (this.tls) rmSync(this.tls.dir, { recursive: true, force: true });
  }
}
