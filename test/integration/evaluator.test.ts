import { strict as assert } from 'node:assert';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpoint } from '@facenet/core';
import type { EvaluationRecord } from '@facenet/protocol';
import { api, JobView, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { LFW, ORL, tempDir } from '../helpers';
import { needLfw } from '../requirements';

const spec = (extra: object = {}) => ({
  dataset: { kind: 'folder', path: ORL, cropFraction: 0.9 },
  holdout: 10,
  worldSize: 2,
  train: {
    model: { architecture: 'tiny', imageSize: 32 },
    batch: { P: 10, K: 4 },
    virtualShards: 2,
    steps: 16,
    checkpointEvery: 4,
    seed: 5,
    optimizer: { name: 'adam', learningRate: 0.002 },
  },
  ...extra,
});

interface CheckpointView {
  step: number;
  best: boolean;
  evaluation: { val: number; accuracy: number } | null;
}

/** Waits until the evaluator has scored the job's last checkpoint. */
async function evaluationsUpTo(url: string, id: string, step: number): Promise<EvaluationRecord[]> {
  let evals: EvaluationRecord[] = [];
  await waitFor(
    async () => {
      evals = await api<EvaluationRecord[]>(url, 'GET', `/v1/jobs/${id}/evaluations`);
      return evals.some((e) => e.step === step);
    },
    120000,
    `the evaluation of step ${step}`,
  );
  return evals;
}

const last0 = (evals: EvaluationRecord[]) => evals[evals.length - 1]!;

function assertSane(e: EvaluationRecord): void {
  for (const k of ['accuracy', 'val', 'far', 'auc'] as const) assert.ok(e[k] >= 0 && e[k] <= 1, `${k} = ${e[k]}`);
  assert.ok(e.accuracy >= 0.5, `accuracy ${e.accuracy} is at least chance (thresholds from the other folds)`);
  assert.ok(e.threshold > 0 && e.threshold < 4, `threshold ${e.threshold} is a squared distance on the unit sphere`);
  assert.ok(e.pairs > 0 && e.folds >= 2 && e.seconds > 0);
}

describe('evaluator: VAL/FAR of every checkpoint while the job runs (facenet up)', function () {
  this.timeout(300000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;
  before(async () => {
    t = tempDir('facenet-evaluator-');
    cluster = await startCluster(2, join(t.dir, 'ckpt'));
    await waitFor(async () => (await api<unknown>(cluster.url, 'GET', '/v1/evaluator')) !== null, 30000, 'the evaluator to register');
  });
  after(async () => {
    await cluster?.stop();
    t.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(cluster.logs.slice(-40).join('\n'));
  });

  it('scores checkpoints on held-out identities; the job view and checkpoint list name the best by VAL; /metrics exports it by job_id', async () => {
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec());
    const done = await waitForState(cluster.url, job.id, ['completed'], 180000);
    const evals = await evaluationsUpTo(cluster.url, job.id, done.step);
    for (const e of evals) {
      assertSane(e);
      assert.equal(e.set, 'holdout');
      assert.equal(e.farTarget, 1e-3);
      assert.ok(done.lastCheckpoint && e.checkpointDir.startsWith(join(t.dir, 'ckpt')), e.checkpointDir);
      // Every pair of the 10 held-out ORL people's 100 images: 10 x 45 genuine, 4,950 - 450 impostor;
      // 4,500 impostors resolve FAR 1e-3 (4 accepted), not 1e-4.
      assert.deepEqual(
        { ...e.allPairs, valAt1e3: undefined },
        { valAt1e3: undefined, valAt1e4: null, images: 100, genuinePairs: 450, impostorPairs: 4500, impostorPairsScored: 4500 },
      );
      assert.ok(e.allPairs!.valAt1e3! >= 0 && e.allPairs!.valAt1e3! <= 1);
    }
    const { manifest } = await readCheckpoint(done.lastCheckpoint!.dir);
    assert.deepEqual(manifest.preprocessing, { cropFraction: 0.9 }, "distributed checkpoints record the dataset's crop");
    assert.deepEqual(
      evals.map((e) => e.step),
      [...new Set(evals.map((e) => e.step))].sort((a, b) => a - b),
      'one record per checkpoint, in step order',
    );
    const view = await api<JobView>(cluster.url, 'GET', `/v1/jobs/${job.id}`);
    const bestVal = Math.max(...evals.map((e) => e.val));
    assert.equal(view.evaluation.count, evals.length);
    assert.equal(view.evaluation.latest?.step, done.step);
    assert.equal(view.evaluation.best?.val, bestVal);
    const ckpts = await api<CheckpointView[]>(cluster.url, 'GET', `/v1/jobs/${job.id}/checkpoints`);
    const marked = ckpts.filter((c) => c.best);
    assert.equal(marked.length, 1, 'exactly one checkpoint is marked best');
    assert.equal(marked[0]!.step, view.evaluation.best?.step);
    assert.equal(marked[0]!.evaluation?.val, bestVal);
    // Each checkpoint's report, written by the evaluator beside the checkpoint root and served by the coordinator.
    for (const e of evals) assert.equal(e.report, join(job.id, `step-${String(e.step).padStart(6, '0')}.html`));
    assert.ok(existsSync(join(t.dir, 'reports', last0(evals).report!)), 'the report is a file under the report root');
    const res = await fetch(`${cluster.url}/v1/jobs/${job.id}/evaluations/${done.step}/report`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const page = await res.text();
    assert.ok(page.includes(`${(100 * last0(evals).accuracy).toFixed(1)}%`), "the page shows the evaluation's accuracy");
    assert.match(page, /<svg id="roc"/);
    const inlined = page.match(/src="data:image\/jpeg;base64,/g)?.length ?? 0;
    assert.ok(inlined >= 2 && inlined <= 32, `${inlined} inlined face images (pairs of the worst errors)`);
    const missing = await fetch(`${cluster.url}/v1/jobs/${job.id}/evaluations/${done.step + 1000}/report`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: string }).error, /not evaluated/);
    const { metrics } = await api<{ metrics: string }>(cluster.url, 'GET', '/v1/evaluator');
    const text = await (await fetch(`http://${metrics}/metrics`)).text();
    const last = evals[evals.length - 1]!;
    assert.match(text, new RegExp(`facenet_evaluation_val\\{job_id="${job.id}"\\} ${last.val}`));
    assert.match(text, new RegExp(`facenet_evaluation_checkpoint_step\\{job_id="${job.id}"\\} ${last.step}`));
    assert.match(text, new RegExp(`facenet_evaluation_val_all_pairs\\{job_id="${job.id}",far="0.001"\\} ${last.allPairs!.valAt1e3}`));
    assert.doesNotMatch(text, /facenet_evaluation_val_all_pairs\{[^}]*far="0.0001"/, 'an unresolved FAR is not exported as 0');
    assert.match(text, new RegExp(`facenet_evaluations_total\\{job_id="${job.id}"\\} ${evals.length}`));
  });

  it('scores an LFW pairs file (folds 8-9) when the job names one', async function () {
    needLfw(this);
    const evaluation = { pairs: join(LFW, 'pairs.txt'), images: join(LFW, 'images'), folds: [8, 9], cropFraction: 0.5 };
    const job = await api<JobView>(
      cluster.url,
      'POST',
      '/v1/jobs',
      spec({ evaluation, train: { ...spec().train, steps: 4, checkpointEvery: 4 } }),
    );
    const done = await waitForState(cluster.url, job.id, ['completed'], 180000);
    const [e] = (await evaluationsUpTo(cluster.url, job.id, done.step)).filter((x) => x.step === done.step);
    assertSane(e!);
    assert.equal(e!.set, 'pairs-file');
    assert.equal(e!.folds, 2);
    assert.equal(e!.pairs + e!.droppedPairs, 1200, 'two folds of 300 matched and 300 mismatched pairs');
    // Every image of the folds' people, every pair of them: enough impostors to resolve FAR 1e-3.
    const all = e!.allPairs!;
    assert.ok(all.images > 1000 && all.impostorPairs > 500_000, JSON.stringify(all));
    assert.equal(all.impostorPairsScored, all.impostorPairs);
    assert.ok(all.valAt1e3 !== null && all.valAt1e4 !== null);
  });

  it('retention keeps the newest checkpoint and the best by VAL, deleting the other folders', async () => {
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec({ retention: { keepLast: 1 } }));
    const done = await waitForState(cluster.url, job.id, ['completed'], 180000);
    const evals = await evaluationsUpTo(cluster.url, job.id, done.step);
    const ckpts = await api<(CheckpointView & { dir: string })[]>(cluster.url, 'GET', `/v1/jobs/${job.id}/checkpoints`);
    const kept = ckpts.map((c) => c.step);
    assert.ok(kept.includes(16), `the newest is kept: ${kept}`);
    assert.ok(kept.length <= 2, `at most the newest and the best: ${kept}`);
    for (const c of ckpts) assert.ok(existsSync(c.dir), `${c.dir} is on disk`);
    const jobDir = join(t.dir, 'ckpt', job.id);
    const onDisk = readdirSync(jobDir).filter((d) => d.startsWith('step-'));
    assert.equal(onDisk.length, ckpts.length, `folders on disk: ${onDisk}`);
    // A second kept checkpoint can only be the best by VAL of those evaluated by then.
    for (const c of ckpts.filter((x) => x.step !== 16))
      assert.ok(
        evals.some((e) => e.step === c.step),
        `step ${c.step} was kept as the best evaluated`,
      );
  });

  it('refuses a job whose pairs file is missing, naming the field', async () => {
    const res = await fetch(`${cluster.url}/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(spec({ evaluation: { pairs: join(t.dir, 'no-such-pairs.txt'), images: t.dir } })),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { issues: { path: string; message: string }[] };
    assert.ok(
      body.issues.some((i) => i.path === 'evaluation.pairs'),
      JSON.stringify(body),
    );
  });
});
