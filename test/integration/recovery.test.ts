import { strict as assert } from 'node:assert';
import { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { api, JobView, spawnWorker, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { ORL, tempDir } from '../helpers';

const spec = (worldSize: number) => ({
  dataset: { kind: 'folder', path: ORL },
  holdout: 10,
  worldSize,
  checksumEvery: 1,
  train: {
    model: { architecture: 'tiny', imageSize: 32 },
    batch: { P: 12, K: 4 },
    virtualShards: 6,
    steps: 8,
    checkpointEvery: 2,
    seed: 4,
  },
});

/**
 * A rank that dies right after applying a step, before reporting it (FACENET_FAULT_EXIT_AFTER_APPLY_AT_STEP),
 * leaves the survivors one step ahead of the record. That step is committed as `recovered` only
 * when two workers vouch for the same weights; one copy alone is replayed.
 */
describe('recovering the step in flight needs two copies that agree', function () {
  this.timeout(300000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster | undefined;
  let victim: ChildProcess | undefined;

  beforeEach(() => {
    t = tempDir('facenet-recovery-');
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && cluster) console.log(cluster.logs.slice(-60).join('\n'));
    victim?.kill('SIGKILL');
    await cluster?.stop();
    t.cleanup();
  });

  async function run(worldSize: number): Promise<{ job: JobView; history: { step: number; recovered?: boolean }[] }> {
    cluster = await startCluster(worldSize - 1, join(t.dir, 'ckpt'), {}, ['--no-miner', '--no-evaluator']);
    victim = spawnWorker(cluster, { FACENET_FAULT_EXIT_AFTER_APPLY_AT_STEP: '4' }); // dies after applying step 5
    await waitFor(
      async () => (await api<unknown[]>(cluster!.url, 'GET', '/v1/workers')).length === worldSize,
      30000,
      'the victim to register',
    );
    const created = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec(worldSize));
    const job = await waitForState(cluster.url, created.id, ['completed'], 240000);
    const history = await api<{ step: number; recovered?: boolean }[]>(cluster.url, 'GET', `/v1/jobs/${job.id}/history`);
    return { job, history };
  }

  it('W=3: two survivors hold step 5 with equal checksums, so it is committed as recovered (nothing undone)', async () => {
    const { job, history } = await run(3);
    assert.equal(job.faults.length, 1);
    const f = job.faults[0]!;
    assert.deepEqual([f.inStep, f.recovery, f.resumedAt, f.stepsLost], [5, 'survivors', 5, 0]);
    assert.ok(
      history.some((h) => h.step === 5 && h.recovered),
      'step 5 recorded as recovered',
    );
  });

  it('W=2: one survivor alone holds step 5, so it is not trusted: the job replays it from the step-4 checkpoint', async () => {
    const { job, history } = await run(2);
    assert.equal(job.faults.length, 1);
    const f = job.faults[0]!;
    assert.deepEqual([f.inStep, f.recovery, f.resumedAt], [5, 'checkpoint', 4]);
    assert.ok(!history.some((h) => h.recovered), 'no step committed from one unchecked copy');
    assert.ok(cluster!.logs.some((l) => /step 5 is held by .* alone, with no second copy/.test(l)));
  });
});
