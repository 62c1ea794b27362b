import { strict as assert } from 'node:assert';
import { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import IORedis from 'ioredis';
import { redisKeys } from '@facenet/protocol';
import { deleteKeysUnder, INBOX_GROUP } from '@facenet/service-kit';
import { api, JobView, spawnCoordinator, spawnWorker, waitFor, waitForState } from '../cluster-helpers';
import { tempDir } from '../helpers';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A process dies in the middle of a step and comes back. The coordinator (kill -9 while a step is
 * in flight): the workers finish that step and answer with nobody reading; the next coordinator
 * sends the step again under the same item ids and each worker answers it again from memory, with
 * no second run (which would find the weights one step ahead and fail). A worker (kill -9, started
 * again under the same id, as a container restarts inside its pod): the new process answers the
 * item its predecessor held as failed, so the coordinator re-plans at once instead of waiting out
 * the step timeout for an answer that cannot come.
 */
describe('restarts mid-step: a coordinator, a worker process', function () {
  this.timeout(240_000);
  const t = tempDir('facenet-restart-');
  const logs: string[] = [];
  const procs: ChildProcess[] = [];
  const prefixes: string[] = [];
  const redis = new IORedis(REDIS);
  let prefix = '';

  beforeEach(() => {
    prefix = `fnrestart-${randomBytes(4).toString('hex')}`;
    prefixes.push(prefix);
    logs.length = 0;
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.log(logs.slice(-60).join('\n'));
    for (const p of procs.splice(0)) p.kill('SIGKILL');
  });
  after(async () => {
    for (const p of prefixes) await deleteKeysUnder(REDIS, p);
    redis.disconnect();
    t.cleanup();
  });

  it('a coordinator killed mid-step (W=2): the next one collects the step in flight; no fault, every step committed once, ranks bit-identical to the end', async () => {
    const ckpt = join(t.dir, 'ckpt');
    const first = await spawnCoordinator(prefix, ckpt, logs);
    procs.push(first.proc);
    const workers = [0, 1].map((i) => spawnWorker({ prefix, checkpointRoot: ckpt }, { FACENET_WORKER_ID: `rw${i}` }));
    procs.push(...workers);
    await waitFor(async () => (await api<unknown[]>(first.url, 'GET', '/v1/workers')).length === 2, 30_000, 'two workers');
    const job = await api<JobView>(first.url, 'POST', '/v1/jobs', {
      dataset: { kind: 'synthetic', identities: 24, imagesPerIdentity: 6 },
      worldSize: 2,
      checksumEvery: 1,
      train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 8, K: 4 }, virtualShards: 2, steps: 12, checkpointEvery: 4 },
    });
    await waitFor(async () => (await api<JobView>(first.url, 'GET', `/v1/jobs/${job.id}`)).step >= 3, 120_000, 'step 3');
    // Rank 1 stops, so the step in flight cannot finish before the coordinator is gone.
    process.kill(workers[1]!.pid!, 'SIGSTOP');
    await new Promise((r) => setTimeout(r, 300));
    const inFlight = (await api<JobView>(first.url, 'GET', `/v1/jobs/${job.id}`)).step;
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));
    await redis.del(redisKeys(prefix).coordinatorLock); // as if its lock had expired
    process.kill(workers[1]!.pid!, 'SIGCONT');
    // The workers finish the step with nobody listening; then the next coordinator starts.
    const answersTo = async (step: number) =>
      (await redis.xrange(redisKeys(prefix).workResults, '-', '+')).filter(([, f]) => f[1]?.startsWith(`${job.id}-s${step}-`)).length;
    // In flight: rank 1 (stopped) has not answered. Rank 0 may have: if the stop landed after rank
    // 1's share of the allreduce, rank 0 finishes the step alone (seen under load: 1 answer).
    assert.ok((await answersTo(inFlight)) < 2, 'the step was in flight when the coordinator died');
    await waitFor(async () => (await answersTo(inFlight)) === 2, 60_000, 'both answers to the step in flight');
    const second = await spawnCoordinator(prefix, ckpt, logs);
    procs.push(second.proc);
    const done = await waitForState(second.url, job.id, ['completed', 'failed'], 180_000);
    assert.equal(done.state, 'completed', done.error);
    assert.deepEqual(done.faults, [], 'no fault');
    const history = await api<{ step: number }[]>(second.url, 'GET', `/v1/jobs/${job.id}/history?limit=100`);
    assert.deepEqual(
      history.map((h) => h.step).sort((a, b) => a - b),
      Array.from({ length: 12 }, (_, i) => i + 1),
      'every step once',
    );
    assert.ok(
      logs.some((l) => l.includes(`job ${job.id}`) && l.includes('completed 12 steps')),
      'the second coordinator completed it',
    );
  });

  it("a worker's process killed mid-step and restarted under the same id (a container restart in its pod): the step fails at once, not after the step timeout, and the job goes on", async () => {
    const ckpt = join(t.dir, 'ckpt-worker');
    const coordinator = await spawnCoordinator(prefix, ckpt, logs);
    procs.push(coordinator.proc);
    const env = { FACENET_WORKER_ID: 'pod-0' };
    const first = spawnWorker({ prefix, checkpointRoot: ckpt }, env);
    procs.push(first);
    await waitFor(async () => (await api<unknown[]>(coordinator.url, 'GET', '/v1/workers')).length === 1, 30_000, 'the worker');
    const job = await api<JobView>(coordinator.url, 'POST', '/v1/jobs', {
      dataset: { kind: 'synthetic', identities: 24, imagesPerIdentity: 6 },
      worldSize: 1,
      train: { model: { architecture: 'tiny', imageSize: 48 }, batch: { P: 8, K: 4 }, virtualShards: 1, steps: 10, checkpointEvery: 2 },
    });
    await waitFor(async () => (await api<JobView>(coordinator.url, 'GET', `/v1/jobs/${job.id}`)).step >= 3, 120_000, 'step 3');
    // Stop the process while it holds a step (taken from its inbox, not answered), then kill it.
    const inbox = redisKeys(prefix).workerInbox('pod-0');
    const taken = async () => ((await redis.xpending(inbox, INBOX_GROUP)) as [number])[0];
    await waitFor(
      async () => {
        if ((await taken()) === 0) return false;
        process.kill(first.pid!, 'SIGSTOP');
        if ((await taken()) === 1) return true;
        process.kill(first.pid!, 'SIGCONT'); // it answered in between: try the next step
        return false;
      },
      60_000,
      'the worker stopped holding a step',
    );
    first.kill('SIGKILL');
    const killedAt = Date.now();
    procs.push(spawnWorker({ prefix, checkpointRoot: ckpt }, env));
    const done = await waitForState(coordinator.url, job.id, ['completed', 'failed'], 180_000);
    assert.equal(done.state, 'completed', done.error);
    const fault = done.faults.find((f) => /the worker restarted while running/.test(f.reason));
    assert.ok(fault, `a fault naming the restart; faults: ${JSON.stringify(done.faults)}`);
    const after = Date.parse(fault.at) - killedAt;
    assert.ok(after < 30_000, `faulted ${after} ms after the kill (the step timeout is 600,000 ms)`);
  });
});
