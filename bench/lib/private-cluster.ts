/**
 * A cluster of real processes for the fault benches (fault-recovery.ts, fault-soak.ts): a private
 * redis-server with AOF (fsync always) on a free port, the coordinator, workers, miner and
 * evaluator, each started from the built packages so a bench can kill and restart any of them.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const mainOf = (pkg: string) => resolve(__dirname, '..', '..', 'packages', pkg, 'dist', 'main.js');
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const freePort = () =>
  new Promise<number>((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });

/** Resident memory of a process in MiB (Linux /proc), or NaN once it is gone. */
export function rssMiB(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export class PrivateCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'facenet-faultbench-'));
  readonly prefix = `fnbench-${process.pid}`;
  /** Work items and aborts are signed, as `facenet up` runs them. */
  readonly workKey = randomBytes(32).toString('hex');
  redis!: ChildProcess;
  coordinator!: ChildProcess;
  miner: ChildProcess | undefined;
  evaluator: ChildProcess | undefined;
  readonly workers: ChildProcess[] = [];
  redisPort = 0;
  apiPort = 0;

  get url() {
    return `http://127.0.0.1:${this.apiPort}`;
  }

  get checkpointRoot() {
    return join(this.dir, 'ckpt');
  }

  private env() {
    return {
      ...process.env,
      REDIS_URL: `redis://127.0.0.1:${this.redisPort}`,
      FACENET_PREFIX: this.prefix,
      FACENET_API_PORT: String(this.apiPort),
      FACENET_CHECKPOINT_ROOT: this.checkpointRoot,
      FACENET_WORK_KEY: this.workKey,
    };
  }

  async startRedis(): Promise<void> {
    this.redisPort ||= await freePort();
    const args = ['--port', String(this.redisPort), '--bind', '127.0.0.1', '--appendonly', 'yes', '--appendfsync', 'always'];
    args.push('--save', '', '--dir', this.dir, '--maxmemory-policy', 'noeviction');
    this.redis = spawn('redis-server', args, { stdio: 'ignore' });
    await sleep(300);
  }

  /** Starts a coordinator; retries while the dead one's lock has not expired. */
  async startCoordinator(): Promise<void> {
    this.apiPort ||= await freePort();
    for (;;) {
      const proc = spawn(process.execPath, [mainOf('coordinator')], { env: this.env(), stdio: ['ignore', 'pipe', 'ignore'] });
      const ok = await new Promise<boolean>((res) => {
        createInterface({ input: proc.stdout! }).on('line', (l) => l.startsWith('{"event":"ready"') && res(true));
        proc.once('exit', () => res(false));
      });
      if (ok) {
        this.coordinator = proc;
        return;
      }
      await sleep(500);
    }
  }

  startWorker(): ChildProcess {
    const w = spawn(process.execPath, [mainOf('worker')], { env: this.env(), stdio: 'ignore' });
    this.workers.push(w);
    w.once('exit', () => this.workers.splice(this.workers.indexOf(w), 1));
    return w;
  }

  startMiner(): ChildProcess {
    this.miner = spawn(process.execPath, [mainOf('miner')], { env: this.env(), stdio: 'ignore' });
    return this.miner;
  }

  startEvaluator(): ChildProcess {
    this.evaluator = spawn(process.execPath, [mainOf('evaluator')], { env: this.env(), stdio: 'ignore' });
    return this.evaluator;
  }

  /** A REST call that waits out a restarting coordinator (connection refused) instead of failing. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    for (;;) {
      try {
        const r = await fetch(this.url + path, {
          method,
          headers: body ? { 'content-type': 'application/json' } : {},
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        if (r.status >= 500) throw new Error(`HTTP ${r.status}`); // Redis restarting under it
        return (await r.json()) as T;
      } catch {
        await sleep(100);
      }
    }
  }

  async stop(): Promise<void> {
    for (const p of [...this.workers, this.coordinator, this.miner, this.evaluator]) p?.kill('SIGKILL');
    this.redis?.kill('SIGKILL');
    await sleep(300);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
