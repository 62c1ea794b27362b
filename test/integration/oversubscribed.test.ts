import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { api, JobView, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { tempDir } from '../helpers';

/**
 * Eight ranks on a 2-core host, and one of them stalled for 4 s (SIGSTOP, as a swapped-out or
 * starved process is) while its heartbeat expires after 1.5 s. Before: a worker whose
 * registration lapsed was declared lost at once ("stopped heartbeating"; seen at W=8-16 on this
 * host), each false fault costing the 7 s settle and a world rebuild. A lapsed registration now
 * counts as a loss only when the worker's process is gone (its /healthz refuses connections) or
 * stays silent past the grace (10 s).
 */
describe('W=8 on one 2-core host', function () {
  this.timeout(600_000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;

  before(async () => {
    t = tempDir('facenet-w8-');
    cluster = await startCluster(8, join(t.dir, 'ckpt'), { FACENET_HEARTBEAT_MS: '500' }, ['--no-miner', '--no-evaluator']);
  });
  after(async () => {
    await cluster?.stop();
    t?.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(cluster.logs.slice(-60).join('\n'));
  });

  it('trains to the end with zero faults through a 4 s stall of one rank', async () => {
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', {
      dataset: { kind: 'synthetic', identities: 40, imagesPerIdentity: 6 },
      worldSize: 8,
      train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 16, K: 4 }, virtualShards: 8, steps: 40, checkpointEvery: 10 },
    });
    await waitFor(async () => (await api<JobView>(cluster.url, 'GET', `/v1/jobs/${job.id}`)).step >= 3, 120_000, 'step 3');
    const workers = await api<{ id: string; pid: number }[]>(cluster.url, 'GET', '/v1/workers');
    const stalled = workers[3]!;
    process.kill(stalled.pid, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, 4000));
    process.kill(stalled.pid, 'SIGCONT');
    const done = await waitForState(cluster.url, job.id, ['completed'], 480_000);
    assert.equal(done.world.size, 8);
    assert.deepEqual(done.faults, [], 'a live worker was declared lost');
  });
});
