import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { api, JobView, startCluster, TestCluster, waitForState } from '../cluster-helpers';
import { ORL, tempDir } from '../helpers';

/**
 * The non-finite guard on real processes. Spec limits keep learning rates where float32 does not
 * overflow within a test's few steps, so the workers inject the fault: NaN gradients at step 4
 * (FACENET_FAULT_NON_FINITE_AT_STEP=3), on every rank, in every retry.
 */
describe('non-finite steps are never trained on (facenet up --workers 3, injected NaN gradients)', function () {
  this.timeout(300000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;
  before(async () => {
    t = tempDir('facenet-nan-');
    cluster = await startCluster(3, join(t.dir, 'ckpt'), { FACENET_FAULT_NON_FINITE_AT_STEP: '3' }, ['--no-miner', '--no-evaluator']);
  });
  after(async () => {
    await cluster?.stop();
    t.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(cluster.logs.slice(-60).join('\n'));
  });

  it('every rank rejects the step, the job rolls back with a lower rate, and fails saying why', async () => {
    const spec = {
      dataset: { kind: 'folder', path: ORL },
      holdout: 10,
      worldSize: 3,
      nonFinite: { learningRateFactor: 0.1, maxRollbacks: 2 },
      train: {
        model: { architecture: 'tiny', imageSize: 32 },
        batch: { P: 12, K: 4 },
        virtualShards: 6,
        steps: 10,
        checkpointEvery: 2,
        seed: 11,
      },
    };
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec);
    const end = await waitForState(cluster.url, job.id, ['failed', 'completed'], 120000);
    assert.equal(end.state, 'failed');
    assert.match(end.error ?? '', /non-finite gradients at step 4.*gave up after 2 rollback/);
    assert.equal(end.step, 3, 'steps 1-3 committed, step 4 never applied');
    assert.equal(end.nonFiniteRollbacks, 2, 'two rollbacks done; the third non-finite step failed the job instead');
    assert.ok(end.learningRateScale < 0.01 + 1e-12, `learning rate scale lowered twice: ${end.learningRateScale}`);
    const rejected = end.faults.filter((f) => f.kind === 'non-finite');
    assert.equal(rejected.length, 3);
    assert.ok(
      rejected.every((f) => f.step === 3),
      'every rollback retried the same step: nothing was applied',
    );
    assert.ok(
      rejected.every((f) => f.inStep === 4),
      'the record names the step as the log does',
    );
    assert.deepEqual(
      rejected.map((f) => f.recovery),
      ['rollback', 'rollback', undefined],
    );
    const metrics = await (await fetch(`${cluster.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`facenet_job_non_finite_rollbacks_total\\{job_id="${job.id}"\\} 2`));
  });
});
