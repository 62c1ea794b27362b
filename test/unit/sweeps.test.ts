import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import {
  createMetrics,
  newSweepRecord,
  stopReason,
  SweepRunner,
  SweepStore,
  sweepView,
  trialParameters,
  trialSpec,
  withParameters,
} from '@facenet/coordinator';
import { EvaluationRecord, JobRecord, sweepSpecSchema } from '@facenet/protocol';
import { deleteKeysUnder } from '@facenet/service-kit';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const spec = (o: object) => sweepSpecSchema.parse({ base: { dataset: { kind: 'synthetic' } }, ...o });
const rule = (o: object = {}) => spec({ parameters: [{ path: 'a', values: [1] }], earlyStopping: o }).earlyStopping;

describe('sweeps: parameters, early stopping, the runner', () => {
  it('grid: every combination once, the last parameter fastest; random: seeded per trial, inside its range', () => {
    const grid = spec({
      parameters: [
        { path: 'train.optimizer.learningRate', values: [0.1, 0.01] },
        { path: 'train.batch.K', values: [2, 4, 8] },
      ],
      search: { kind: 'grid' },
    });
    const combos = [0, 1, 2, 3, 4, 5].map((i) => Object.values(trialParameters(grid, i)));
    assert.deepEqual(combos, [
      [0.1, 2],
      [0.1, 4],
      [0.1, 8],
      [0.01, 2],
      [0.01, 4],
      [0.01, 8],
    ]);
    const random = spec({
      parameters: [
        { path: 'lr', logUniform: [1e-4, 1e-1] },
        { path: 'k', intRange: [2, 4] },
        { path: 'm', uniform: [0.1, 0.3] },
      ],
      search: { kind: 'random', seed: 7 },
    });
    const draws = Array.from({ length: 200 }, (_, i) => trialParameters(random, i) as { lr: number; k: number; m: number });
    assert.deepEqual(trialParameters(random, 3), draws[3], 'the same trial is proposed again after a restart');
    assert.ok(draws.every((d) => d.lr >= 1e-4 && d.lr <= 1e-1 && [2, 3, 4].includes(d.k) && d.m >= 0.1 && d.m <= 0.3));
    assert.ok(draws.some((d) => d.lr < 1e-3) && draws.some((d) => d.lr > 1e-2), 'log-uniform covers the decades');
    assert.deepEqual(new Set(draws.map((d) => d.k)), new Set([2, 3, 4]));
  });

  it('tpe: after its random start, proposes from the finished trials; finds a better recipe than random search on a known objective', () => {
    // A known objective with its best at lr 10^-2.5, the second batch shape, margin 0.22, K 12.
    const shapes = [
      { P: 90, K: 4 },
      { P: 50, K: 8 },
      { P: 30, K: 12 },
      { P: 20, K: 16 },
    ];
    const objective = (p: Record<string, unknown>) =>
      -((Math.log10(p.lr as number) + 2.5) ** 2) -
      (JSON.stringify(p.batch) === JSON.stringify(shapes[1]) ? 0 : 1) -
      (((p.margin as number) - 0.22) / 0.1) ** 2 -
      (((p.k as number) - 12) / 4) ** 2;
    const sweepOf = (kind: string, seed: number) =>
      spec({
        parameters: [
          { path: 'lr', logUniform: [1e-4, 1e-1] },
          { path: 'batch', values: shapes },
          { path: 'margin', uniform: [0.1, 0.3] },
          { path: 'k', intRange: [2, 16] },
        ],
        search: { kind, seed, startupTrials: 5 },
      });
    const TRIALS = 30;
    const run = (kind: string, seed: number) => {
      const s = sweepOf(kind, seed);
      const obs: { params: Record<string, unknown>; score: number }[] = [];
      for (let i = 0; i < TRIALS; i++) {
        const params = trialParameters(s, i, obs);
        assert.ok((params.lr as number) >= 1e-4 && (params.lr as number) <= 1e-1, `lr ${String(params.lr)}`);
        assert.ok(shapes.some((b) => JSON.stringify(b) === JSON.stringify(params.batch)));
        assert.ok((params.margin as number) >= 0.1 && (params.margin as number) <= 0.3);
        assert.ok(Number.isInteger(params.k) && (params.k as number) >= 2 && (params.k as number) <= 16);
        obs.push({ params, score: objective(params) });
      }
      return obs.map((o) => o.score);
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const seeds = Array.from({ length: 10 }, (_, i) => i + 1);
    const tpe = seeds.map((seed) => run('tpe', seed));
    const random = seeds.map((seed) => run('random', seed));
    // The start is random search itself: the same draws for the same seed.
    assert.deepEqual(
      tpe.map((s) => s.slice(0, 5)),
      random.map((s) => s.slice(0, 5)),
    );
    const best = (scores: number[]) => Math.max(...scores);
    const later = (scores: number[]) => median(scores.slice(15));
    const tpeWins = seeds.filter((_, i) => best(tpe[i]!) > best(random[i]!)).length;
    assert.ok(tpeWins >= 7, `tpe found the better recipe for ${tpeWins} of 10 seeds`);
    assert.ok(
      median(tpe.map(later)) > median(random.map(later)) + 1,
      `tpe's later trials concentrate near the best: median score ${median(tpe.map(later))} vs random ${median(random.map(later))}`,
    );
    // Proposals are a function of (seed, index, observations): a restarted coordinator given the
    // same finished trials proposes the same trial.
    const s = sweepOf('tpe', 3);
    const obs = Array.from({ length: 6 }, (_, i) => ({ params: trialParameters(s, i), score: i }));
    assert.deepEqual(trialParameters(s, 6, obs), trialParameters(s, 6, obs));
  });

  it('withParameters sets dotted paths on a copy; a grid with a range, or a bad path, is refused naming it', () => {
    const base = { train: { optimizer: { name: 'adam' } } };
    const out = withParameters(base, { 'train.optimizer.learningRate': 0.01, 'curriculum.enabled': true });
    assert.deepEqual(out, { train: { optimizer: { name: 'adam', learningRate: 0.01 } }, curriculum: { enabled: true } });
    assert.deepEqual(base, { train: { optimizer: { name: 'adam' } } });
    const grid = sweepSpecSchema.safeParse({ base: {}, parameters: [{ path: 'a', uniform: [0, 1] }], search: { kind: 'grid' } });
    assert.equal(grid.success, false);
    assert.deepEqual(
      grid.error?.issues.map((i) => i.path),
      [['parameters', 0]],
    );
    assert.equal(sweepSpecSchema.safeParse({ base: {}, parameters: [{ path: 'a..b', values: [1] }] }).success, false);
  });

  it('variants: named sets of fields deep-merged into the trial spec; a grid of arms x seeds runs each arm once per seed', () => {
    const s = spec({
      base: { dataset: { kind: 'synthetic' }, train: { steps: 150, batch: { P: 90, K: 4 }, optimizer: { name: 'adam' } } },
      parameters: [
        { name: 'seed', variants: [1, 2].map((n) => ({ name: `s${n}`, set: { train: { seed: n, model: { seed: n } } } })) },
        {
          name: 'arm',
          variants: [
            { name: 'base', set: {} },
            { name: 'K8', set: { train: { batch: { P: 50, K: 8 } }, curriculum: { enabled: true } } },
          ],
        },
        { path: 'train.optimizer.learningRate', values: [0.001] },
      ],
      search: { kind: 'grid' },
    });
    const trials = [0, 1, 2, 3].map((i) => trialParameters(s, i));
    assert.deepEqual(
      trials.map((t) => [t.seed, t.arm]),
      [
        ['s1', 'base'],
        ['s1', 'K8'],
        ['s2', 'base'],
        ['s2', 'K8'],
      ],
    );
    assert.deepEqual(trialSpec(s, trials[3]!), {
      dataset: { kind: 'synthetic' },
      train: { steps: 150, batch: { P: 50, K: 8 }, optimizer: { name: 'adam', learningRate: 0.001 }, seed: 2, model: { seed: 2 } },
      curriculum: { enabled: true },
    });
    assert.deepEqual(s.base, {
      dataset: { kind: 'synthetic' },
      train: { steps: 150, batch: { P: 90, K: 4 }, optimizer: { name: 'adam' } },
    });
    const random = spec({
      parameters: [
        {
          name: 'arm',
          variants: [
            { name: 'a', set: {} },
            { name: 'b', set: {} },
          ],
        },
      ],
    });
    assert.deepEqual(new Set(Array.from({ length: 20 }, (_, i) => trialParameters(random, i).arm)), new Set(['a', 'b']));
    const issues = (o: object) => sweepSpecSchema.safeParse({ base: {}, ...o }).error?.issues.map((i) => [i.path.join('.'), i.message]);
    assert.deepEqual(
      issues({
        parameters: [
          { path: 'a', values: [1] },
          { path: 'a', values: [2] },
        ],
      }),
      [['parameters.1', '"a" is swept twice']],
    );
    assert.deepEqual(
      issues({
        parameters: [
          {
            name: 'arm',
            variants: [
              { name: 'x', set: {} },
              { name: 'x', set: {} },
            ],
          },
        ],
      }),
      [['parameters.0.variants', 'variant names must differ']],
    );
  });

  it('median stopping: below the median of the others at the same evaluation stops; not before the grace, not without peers', () => {
    const r = rule({ rule: 'median', graceEvaluations: 2, minTrials: 2 });
    const others = [
      { index: 1, scores: [0.5, 0.6, 0.7] },
      { index: 2, scores: [0.4, 0.5] },
    ];
    assert.match(
      stopReason(r, { index: 0, scores: [0.1, 0.2] }, others) ?? '',
      /median stopping at evaluation 2: best 0.2000 < median 0.5500 of 2 trials/,
    );
    assert.equal(stopReason(r, { index: 0, scores: [0.1] }, others), undefined, 'within the grace');
    assert.equal(stopReason(r, { index: 0, scores: [0.6, 0.6] }, others), undefined, 'above the median');
    assert.equal(
      stopReason(r, { index: 0, scores: [0.1, 0.1, 0.1] }, others.slice(0, 1)),
      undefined,
      'one peer at evaluation 3 < minTrials',
    );
    assert.equal(stopReason(rule({ rule: 'none' }), { index: 0, scores: [0, 0, 0] }, others), undefined);
  });

  it('asha: at each rung only the top 1/eta of the trials that reached it continue', () => {
    const r = rule({ rule: 'asha', graceEvaluations: 1, eta: 3, minTrials: 2 });
    const trials = [0.9, 0.5, 0.1].map((s, index) => ({ index, scores: [s] }));
    const verdict = (i: number) =>
      stopReason(
        r,
        trials[i]!,
        trials.filter((t) => t.index !== i),
      );
    assert.equal(verdict(0), undefined);
    assert.match(verdict(1) ?? '', /asha at rung 1 \(evaluations\): ranked 2 of 3, the top 1 continue/);
    assert.match(verdict(2) ?? '', /ranked 3 of 3/);
  });

  describe('the runner, with a deterministic fake evaluator and fake jobs', () => {
    let redis: IORedis;
    const prefix = `fnsweep-unit-${randomBytes(4).toString('hex')}`;
    before(() => void (redis = new IORedis(REDIS)));
    after(async () => {
      await deleteKeysUnder(REDIS, prefix);
      redis.disconnect();
    });

    /**
     * Jobs that run while their scripted scores are being "evaluated", one evaluation per tick;
     * with a `lag`, the evaluator is that many ticks behind (the last scores come after the job ends).
     */
    function fakeCluster(scripts: number[][], lag = 0) {
      const jobs = new Map<string, JobRecord & { ticks: number }>();
      const cancelled: string[] = [];
      let n = 0;
      return {
        cancelled,
        tick: () => {
          for (const j of jobs.values()) {
            j.ticks++;
            if (j.state === 'running' && j.ticks >= (scripts[Number(j.id.slice(4))] ?? []).length) j.state = 'completed';
          }
        },
        deps: {
          jobs: {
            get: async (id: string) => structuredClone(jobs.get(id)!),
            update: async (id: string, f: (j: JobRecord) => void) => f(jobs.get(id)!),
          } as never,
          evaluations: async (id: string) =>
            (scripts[Number(id.slice(4))] ?? [])
              .slice(0, Math.max(0, jobs.get(id)!.ticks - lag))
              .map((val, k) => ({ step: (k + 1) * 10, val, auc: 0, accuracy: 0 }) as unknown as EvaluationRecord),
          submit: async () => {
            const id = `job-${n++}`;
            const last = 10 * (scripts[n - 1] ?? []).length;
            jobs.set(id, {
              id,
              state: 'running',
              ticks: 0,
              world: [{ workerId: 'w', address: 'x' }],
              checkpoints: [{ step: last, dir: `/ckpt/${id}/step-${last}`, createdAt: '' }],
              spec: { evaluation: { enabled: true } },
              updatedAt: new Date().toISOString(),
            } as never);
            return jobs.get(id)!;
          },
          cancel: async (id: string) => {
            cancelled.push(id);
            jobs.get(id)!.state = 'cancelled';
          },
          log: () => {},
        },
      };
    }

    it('stops the trailing trial by the median rule, cancels its job, completes with the leader best and its checkpoint', async () => {
      const sweeps = new SweepStore(redis, prefix);
      const fake = fakeCluster([
        [0.5, 0.6, 0.7],
        [0.1, 0.1, 0.1],
        [0.45, 0.55, 0.6],
      ]);
      const metrics = createMetrics();
      const runner = new SweepRunner({ sweeps, ...fake.deps, metrics });
      const s = spec({
        name: 'unit',
        parameters: [{ path: 'train.optimizer.learningRate', values: [0.01, 0.00001, 0.003] }],
        search: { kind: 'grid' },
        budget: { maxTrials: 3, parallel: 3 },
        earlyStopping: { rule: 'median', graceEvaluations: 2, minTrials: 2 },
      });
      const rec = newSweepRecord(s);
      await sweeps.create(rec);
      for (let i = 0; i < 8; i++) {
        await runner.tick();
        fake.tick();
      }
      const done = await sweeps.get(rec.id);
      assert.equal(done.state, 'completed');
      assert.deepEqual(
        done.trials.map((t) => t.state),
        ['completed', 'stopped', 'completed'],
      );
      assert.deepEqual(fake.cancelled, ['job-1']);
      assert.match(done.trials[1]!.stopReason ?? '', /median stopping at evaluation 2/);
      const view = await sweepView(done, fake.deps.jobs);
      assert.deepEqual(
        view.leaderboard.map((l) => l.index),
        [0, 2, 1],
      );
      assert.deepEqual(
        [view.best?.trial, view.best?.score, view.best?.step, view.best?.checkpoint?.dir],
        [0, 0.7, 30, '/ckpt/job-0/step-30'],
      );
    });

    it('tpe: each trial after the random start is proposed from the trials finished by then (their best scores), and stored with the trial', async () => {
      const sweeps = new SweepStore(redis, prefix);
      const fake = fakeCluster([[0.3, 0.2], [0.1], [0.9, 0.95], [0.4], [0.5], [0.6]]);
      const runner = new SweepRunner({ sweeps, ...fake.deps });
      const s = spec({
        parameters: [{ path: 'lr', logUniform: [1e-4, 1e-1] }],
        search: { kind: 'tpe', seed: 4, startupTrials: 3 },
        budget: { maxTrials: 5, parallel: 1 },
        earlyStopping: { rule: 'none' },
      });
      const rec = newSweepRecord(s);
      await sweeps.create(rec);
      for (let i = 0; i < 14; i++) {
        await runner.tick();
        fake.tick();
      }
      const done = await sweeps.get(rec.id);
      assert.equal(done.state, 'completed');
      assert.deepEqual(
        done.trials.map((t) => t.best?.score),
        [0.3, 0.1, 0.95, 0.4, 0.5],
      );
      const seen = (n: number) => done.trials.slice(0, n).map((t) => ({ params: t.params, score: t.best!.score }));
      for (const i of [0, 1, 2]) assert.deepEqual(done.trials[i]!.params, trialParameters(s, i), `trial ${i} is a random draw`);
      for (const i of [3, 4]) assert.deepEqual(done.trials[i]!.params, trialParameters(s, i, seen(i)), `trial ${i} is tpe's proposal`);
      assert.notDeepEqual(trialParameters(s, 3, seen(3)), trialParameters(s, 3), 'a proposal differs from the random draw');
    });

    it('a completed trial is ranked on the score of its last checkpoint, which the evaluator gives after the job ends: the sweep waits for it', async () => {
      const sweeps = new SweepStore(redis, prefix);
      const fake = fakeCluster(
        [
          [0.2, 0.3, 0.9],
          [0.5, 0.6, 0.4],
        ],
        2,
      );
      const runner = new SweepRunner({ sweeps, ...fake.deps });
      const s = spec({
        parameters: [{ path: 'x', values: [1, 2] }],
        search: { kind: 'grid' },
        budget: { maxTrials: 2, parallel: 2 },
        earlyStopping: { rule: 'none' },
      });
      const rec = newSweepRecord(s);
      await sweeps.create(rec);
      const seen: string[] = [];
      for (let i = 0; i < 8; i++) {
        await runner.tick();
        const now = await sweeps.get(rec.id);
        seen.push(`${now.state}:${now.trials.map((t) => `${t.state}${t.awaitingFinalScore ? '+' : ''}`).join(',')}`);
        fake.tick();
      }
      // Jobs end after 3 ticks with 1 of 3 scores in; the last arrives 2 ticks later.
      assert.deepEqual(seen.slice(0, 6), [
        'running:running,running',
        'running:running,running',
        'running:running,running',
        'running:completed+,completed+',
        'running:completed+,completed+',
        'completed:completed,completed',
      ]);
      const done = await sweeps.get(rec.id);
      assert.deepEqual(
        done.trials.map((t) => [t.scores, t.best]),
        [
          [[0.2, 0.3, 0.9], { score: 0.9, step: 30 }],
          [[0.5, 0.6, 0.4], { score: 0.6, step: 20 }],
        ],
      );
    });

    it('honours the budget: never more than `parallel` at once, never more than maxTrials; a refused trial is recorded and the sweep goes on', async () => {
      const sweeps = new SweepStore(redis, prefix);
      const fake = fakeCluster([[0.1], [0.2], [0.3], [0.4], [0.5]]);
      let submits = 0;
      const runner = new SweepRunner({
        sweeps,
        ...fake.deps,
        submit: async () => {
          if (submits++ === 1) throw new Error('spec refused: train.batch.K: too small');
          return fake.deps.submit();
        },
      });
      const s = spec({
        parameters: [{ path: 'x', uniform: [0, 1] }],
        budget: { maxTrials: 4, parallel: 2 },
        earlyStopping: { rule: 'none' },
      });
      const rec = newSweepRecord(s);
      await sweeps.create(rec);
      let most = 0;
      for (let i = 0; i < 10; i++) {
        await runner.tick();
        const now = await sweeps.get(rec.id);
        most = Math.max(most, now.trials.filter((t) => t.state === 'running').length);
        fake.tick();
      }
      const done = await sweeps.get(rec.id);
      assert.equal(done.state, 'completed');
      assert.equal(done.trials.length, 4);
      assert.ok(most <= 2, `at most 2 running at once (saw ${most})`);
      assert.equal(done.trials[1]!.state, 'failed');
      assert.match(done.trials[1]!.error ?? '', /too small/);
    });
  });
});
