import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { selectBackend } from '@facenet/core';
import type { TrainConfig } from '@facenet/core';
import { parseJobSpec } from '@facenet/protocol';
import type { JobRecord, StepRecord } from '@facenet/protocol';

export const REPO = resolve(__dirname, '..');
export const CLI = join(REPO, 'packages', 'cli', 'dist', 'main.js');

/**
 * The face data: FACENET_SHARED_DATA, else the read-only ../shared/data beside the project root
 * (this project's machines have it), else the clone's own data/ (where `facenet data fetch lfw`
 * puts LFW by default).
 */
const SHARED_BESIDE = resolve(REPO, '..', 'shared', 'data');
export const SHARED_DATA = process.env.FACENET_SHARED_DATA ?? (existsSync(SHARED_BESIDE) ? SHARED_BESIDE : join(REPO, 'data'));
export const LFW = join(SHARED_DATA, 'lfw');
/** True when ORL is the real set, not the synthetic stand-in (tests of ORL's own figures need it). */
export const REAL_ORL = existsSync(join(SHARED_DATA, 'orl'));
export const ORL = REAL_ORL ? join(SHARED_DATA, 'orl') : orlFixture();

/**
 * Where the real ORL is absent, the tests run on a stand-in of its size, layout and format
 * (40 people x 10 synthetic faces, sN/M.pgm, 92 x 112 grey) that the CLI writes once under the
 * clone's data/ (a default data root, so jobs may read it). It needs the built CLI (npm test builds first).
 */
function orlFixture(): string {
  const dir = join(REPO, 'data', 'test-fixtures', 'orl-synthetic');
  if (!existsSync(dir)) {
    const tmp = `${dir}.partial-${process.pid}`;
    execFileSync(process.execPath, [CLI, 'data', 'synth', tmp, '--layout', 'orl', '--identities', '40', '--images', '10'], {
      stdio: 'ignore',
    });
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true });
    } // another test process got there first
  }
  process.stderr.write(
    `  [data] no ORL at ${join(SHARED_DATA, 'orl')}: tests use the synthetic stand-in ${dir} (facenet data synth --layout orl)\n`,
  );
  return dir;
}

/** Tests run on the best backend present (wasm on development machines), silently. */
export function useBackend(): Promise<unknown> {
  return selectBackend({ log: null });
}

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(prefix = 'facenet-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A TCP port nothing listens on right now (for a server the test starts itself). */
export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** Starts a long-running CLI command with --json and waits for its `{"event":"ready", url}` line (facenet serve, facenet up). */
export function startCliService(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find((l) => l.startsWith('{"event":"ready"'));
      if (line) resolve({ child, url: (JSON.parse(line) as { url: string }).url });
    });
    child.on('exit', (code) => reject(new Error(`facenet ${args[0]} exited ${code}: ${log}`)));
  });
}

/**
 * A complete job record as the coordinator stores it (the store parses what it reads, so a partial
 * one would not do), for tests that write jobs into Redis directly. `train` holds only what the
 * stored-record check looks at.
 */
export function storedJob(id: string, state: JobRecord['state'], ageDays = 0, order = 0): JobRecord {
  const at = new Date(Date.now() - ageDays * 86_400_000 - (100 - order) * 1000).toISOString();
  return {
    id,
    spec: parseJobSpec({ dataset: { kind: 'synthetic', identities: 8, imagesPerIdentity: 4 } }),
    train: { steps: 10 } as TrainConfig,
    state,
    step: 0,
    generation: 0,
    world: [],
    restoreFrom: null,
    checkpoints: [],
    faults: [],
    planSwitches: [],
    highWater: 0,
    createdAt: at,
    updatedAt: at,
  };
}

/** A complete step record as the coordinator commits it, with the given step and loss. */
export function storedStep(step: number, loss: number): StepRecord {
  return {
    step,
    loss,
    activeFraction: 0.5,
    meanPositiveDistance: 0.4,
    meanNegativeDistance: 1.1,
    triplets: 30,
    images: 40,
    classificationLoss: 0,
    classificationAccuracy: 0,
    imagesPerSecond: 100,
    stepMs: 400,
    timings: [],
  };
}
