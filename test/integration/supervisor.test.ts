import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { WorkerInfo } from '@facenet/protocol';
import { api, startCluster, TestCluster, waitFor } from '../cluster-helpers';
import { tempDir } from '../helpers';

/** The processes `facenet up` started, by what they run. */
function childrenOf(pid: number): { pid: number; args: string }[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' }).trim();
  return out ? out.split('\n').map((l) => ({ pid: Number(l.trim().split(/\s+/)[0]), args: l.trim().replace(/^\d+\s+/, '') })) : [];
}
/** Running, not a zombie (an exited child whose parent died waits for init to reap it, and init here may not). */
const alive = (pid: number) => {
  try {
    return !execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' })
      .trim()
      .startsWith('Z');
  } catch {
    return false; // ps exits 1: no such process
  }
};

describe('facenet up supervises its processes (as a pod restartPolicy would)', function () {
  this.timeout(180_000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster | undefined;

  before(async () => {
    t = tempDir('facenet-supervisor-');
    cluster = await startCluster(2, join(t.dir, 'checkpoints'), {}, ['--no-evaluator']);
  });
  after(async () => {
    await cluster?.stop();
    t.cleanup();
  });

  it('a killed worker and a killed miner are started again, with a backoff, and the worker registers anew', async () => {
    const before = await api<WorkerInfo[]>(cluster!.url, 'GET', '/v1/workers');
    const victim = before[0]!;
    process.kill(victim.pid, 'SIGKILL');
    const miner = childrenOf(cluster!.proc.pid!).find((c) => c.args.includes('miner'));
    assert.ok(miner, 'the miner runs');
    process.kill(miner.pid, 'SIGKILL');
    await waitFor(
      async () => {
        const now = await api<WorkerInfo[]>(cluster!.url, 'GET', '/v1/workers');
        return now.length === 2 && !now.some((w) => w.pid === victim.pid);
      },
      60_000,
      'a restarted worker to replace the killed one',
    );
    await waitFor(
      async () => childrenOf(cluster!.proc.pid!).some((c) => c.args.includes('miner') && c.pid !== miner.pid),
      30_000,
      'the miner back',
    );
    assert.ok(
      cluster!.logs.some((l) => /restarting in 1 s \(restart 1\)/.test(l)),
      cluster!.logs.slice(-20).join('\n'),
    );
  });

  it('when the coordinator exits for good, the whole cluster stops with a clear message and a non-zero exit', async () => {
    const children = childrenOf(cluster!.proc.pid!);
    const coordinator = children.find((c) => c.args.includes('coordinator'));
    assert.ok(coordinator, children.map((c) => c.args).join('\n'));
    const code = new Promise<number | null>((r) => cluster!.proc.once('exit', (c) => r(c)));
    process.kill(coordinator.pid, 'SIGKILL');
    assert.equal(await code, 2);
    assert.ok(cluster!.logs.some((l) => /the coordinator exited \(SIGKILL\); nothing trains without it: stopping the cluster/.test(l)));
    for (const c of children) assert.equal(alive(c.pid), false, `${c.args} still runs`);
    // Workers leave on their own once no coordinator holds the lock (a SIGKILLed one's expires in
    // 15 s), instead of waiting out their 60 s drain grace for a release nobody will send.
    assert.ok(!cluster!.logs.some((l) => /after SIGTERM: killed/.test(l)), cluster!.logs.slice(-20).join('\n'));
    assert.ok(cluster!.logs.some((l) => /leaving without release/.test(l)));
  });
});
