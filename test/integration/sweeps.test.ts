import { strict as assert } from 'node:assert';
import { ChildProcess, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import IORedis from 'ioredis';
import { redisKeys } from '@facenet/protocol';
import { deleteKeysUnder } from '@facenet/service-kit';
import { api, JobView, spawnCoordinator, spawnEvaluator, spawnWorker, waitFor } from '../cluster-helpers';
import { CLI, REPO, tempDir } from '../helpers';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Trial {
  index: number;
  jobId?: string;
  state: string;
  scores: number[];
  best?: { score: number; step: number };
  stopReason?: string;
  params: Record<string, unknown>;
}
interface SweepView {
  id: string;
  state: string;
  trials: Trial[];
  leaderboard: { index: number; score: number }[];
  best: { trial: number; jobId: string; score: number; step: number; checkpoint: { dir: string; step: number } | null } | null;
}

/**
 * examples/synthetic-sweep.yaml through the real path: a coordinator process, two workers and the
 * evaluator; the coordinator is killed with SIGKILL in the middle of the sweep and another one
 * takes over, the sweep completes with every trial a job tagged with it.
 */
describe('sweeps through the API: trials as jobs, scored by the evaluator, surviving a coordinator kill', function () {
  this.timeout(420_000);
  const t = tempDir('facenet-sweeps-');
  const prefix = `fnsweeps-${randomBytes(4).toString('hex')}`;
  const ckpt = join(t.dir, 'ckpt');
  const logs: string[] = [];
  const procs: ChildProcess[] = [];

  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await deleteKeysUnder(REDIS, prefix);
    t.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(logs.slice(-80).join('\n'));
  });

  it('runs examples/synthetic-sweep.yaml to the end across a coordinator kill; the leaderboard ranks the trials; the best checkpoint is on disk', async () => {
    let coordinator = await spawnCoordinator(prefix, ckpt, logs);
    procs.push(coordinator.proc);
    for (const i of [0, 1]) procs.push(spawnWorker({ prefix, checkpointRoot: ckpt }, { FACENET_WORKER_ID: `sw${i}` }));
    procs.push(spawnEvaluator({ prefix }));
    const spec = parseYaml(readFileSync(join(REPO, 'examples', 'synthetic-sweep.yaml'), 'utf8')) as Record<string, unknown>;
    // Judged from the first evaluation (step 15 of 120, while every trial still runs): with the example's grace of 2,
    // the evaluator's lag under CI's load let trials end before a second score, and nothing was stopped.
    spec.earlyStopping = { rule: 'median', graceEvaluations: 1, minTrials: 1 };
    const created = await api<SweepView>(coordinator.url, 'POST', '/v1/sweeps', spec);
    assert.equal(created.state, 'running');

    // Mid-sweep: a trial has been scored at least once. Then the coordinator dies without a word.
    await waitFor(
      async () => (await api<SweepView>(coordinator.url, 'GET', `/v1/sweeps/${created.id}`)).trials.some((x) => x.scores.length > 0),
      180_000,
      'a scored trial',
    );
    coordinator.proc.kill('SIGKILL');
    await new Promise((r) => coordinator.proc.once('exit', r));
    // The dead coordinator's lock expires on its own (lockMs, 15 s); the next one starts after it.
    const redis = new IORedis(REDIS);
    await waitFor(
      async () => (await redis.exists(redisKeys(prefix).coordinatorLock)) === 0,
      30_000,
      'the dead coordinator’s lock to expire',
    );
    redis.disconnect();
    coordinator = await spawnCoordinator(prefix, ckpt, logs);
    procs.push(coordinator.proc);

    let end: SweepView | undefined;
    await waitFor(
      async () => (end = await api<SweepView>(coordinator.url, 'GET', `/v1/sweeps/${created.id}`)).state !== 'running',
      300_000,
      'the sweep to end',
    );
    const s = end!;
    assert.equal(s.state, 'completed');
    assert.equal(s.trials.length, 4);
    assert.deepEqual(
      s.trials.map((x) => x.params['train.optimizer.learningRate']),
      [0.0001, 0.001, 0.003, 0.01],
      'the grid, each value once, after the restart too',
    );
    for (const trial of s.trials) {
      assert.ok(trial.jobId, `trial ${trial.index} is a job`);
      const job = await api<JobView & { sweep: { id: string; trial: number } | null }>(coordinator.url, 'GET', `/v1/jobs/${trial.jobId}`);
      assert.deepEqual(job.sweep, { id: s.id, trial: trial.index });
      assert.ok(['completed', 'stopped'].includes(trial.state), `trial ${trial.index}: ${trial.state}`);
      if (trial.state === 'stopped') {
        assert.equal(job.state, 'cancelled');
        // The rule's verdict, checked against the trial's own recorded scores: its best up to evaluation k.
        const m = /median stopping at evaluation (\d+): best ([\d.]+) < median ([\d.]+)/.exec(trial.stopReason ?? '');
        assert.ok(m, trial.stopReason);
        const k = Number(m[1]);
        assert.equal(Math.max(...trial.scores.slice(0, k)).toFixed(4), m[2]);
        assert.ok(Number(m[2]) < Number(m[3]));
      } else assert.equal(job.state, 'completed');
      assert.ok(trial.scores.length > 0, `trial ${trial.index} was scored`);
    }
    // Four trials at 120 steps, scored every 15 (8 evaluations: at 60 steps, 4, the evaluator's lag let a loaded CI
    // run end every trial before a second score, and nothing was stopped): the median rule stops one that trails (seen: 1 of 4 in 4 runs).
    assert.ok(
      s.trials.some((x) => x.state === 'stopped'),
      'early stopping stopped a trial',
    );
    const scores = s.leaderboard.map((l) => l.score);
    assert.deepEqual(
      scores,
      [...scores].sort((a, b) => b - a),
      'best first',
    );
    assert.equal(s.best?.trial, s.leaderboard[0]?.index);
    assert.ok(s.best?.checkpoint && existsSync(s.best.checkpoint.dir), `best checkpoint on disk: ${s.best?.checkpoint?.dir}`);

    const shown = await promisify(execFile)(process.execPath, [CLI, 'sweeps', 'show', s.id, '--api', coordinator.url]);
    assert.match(shown.stdout, new RegExp(`${s.id}\\s+completed\\s+4/4 trials`));
  });
});
