import { strict as assert } from 'node:assert';
import { ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';

/**
 * The ring as the worker uses it: each rank its own process, and the vector's buffer handed to
 * a compute thread the moment the rank's own allreduce resolves. A rank that gave up a buffer
 * its successor was still reading used to stall the successor (W >= 3, or large vectors).
 */
interface Reply {
  cmd: string;
  step?: number;
  ms?: number;
  wrong?: number;
  hash?: string;
  length?: number;
  error?: string;
  address?: string;
}

class Rank {
  private readonly waiting: ((m: Reply) => boolean)[] = [];
  private readonly inbox: Reply[] = [];

  constructor(readonly proc: ChildProcess) {
    proc.on('message', (m: Reply) => {
      const i = this.waiting.findIndex((w) => w(m));
      if (i < 0) this.inbox.push(m);
      else this.waiting.splice(i, 1);
    });
  }

  next(cmds: string[], timeoutMs: number): Promise<Reply> {
    const queued = this.inbox.findIndex((m) => cmds.includes(m.cmd));
    if (queued >= 0) return Promise.resolve(this.inbox.splice(queued, 1)[0] as Reply);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`rank pid ${this.proc.pid}: no ${cmds.join('/')} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiting.push((m) => {
        if (!cmds.includes(m.cmd)) return false;
        clearTimeout(timer);
        resolve(m);
        return true;
      });
    });
  }
}

async function startRing(world: number, env: Record<string, string> = {}): Promise<Rank[]> {
  const ranks = Array.from(
    { length: world },
    () =>
      new Rank(
        fork(join(__dirname, 'fixtures', 'ring-rank.ts'), [], {
          execArgv: ['--import', 'tsx'],
          env: { ...process.env, ...env },
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        }),
      ),
  );
  const addresses = await Promise.all(ranks.map(async (r) => (await r.next(['address'], 30000)).address as string));
  ranks.forEach((r, rank) => r.proc.send({ cmd: 'world', world: addresses, rank }));
  await Promise.all(ranks.map((r) => r.next(['ready'], 10000)));
  return ranks;
}

function stopRing(ranks: Rank[]): Promise<unknown> {
  return Promise.all(
    ranks.map(
      (r) =>
        new Promise((resolve) => {
          if (r.proc.exitCode !== null || r.proc.signalCode !== null) return resolve(null);
          r.proc.once('exit', resolve);
          // A rank just SIGKILLed may not have been reaped yet: its channel is closed, and a send
          // without a callback would throw ERR_IPC_CHANNEL_CLOSED as an uncaught 'error' (CI saw it).
          if (r.proc.killed || !r.proc.connected) return;
          r.proc.send({ cmd: 'exit' }, () => undefined);
        }),
    ),
  );
}

const MB = (1 << 20) / 4; // floats in a MiB

describe('ring allreduce between processes, buffer handed to a compute thread after each step', function () {
  this.timeout(240000);

  for (const world of [2, 3, 4]) {
    it(`W=${world}: 200 steps each at 1 KiB and 1 MiB, 20 at 16 MiB, 4 at 64 MiB: exact sums, identical hashes, no fault`, async () => {
      const ranks = await startRing(world);
      try {
        let step = 0;
        for (const [n, steps] of [
          [256, 200],
          [MB, 200],
          [16 * MB, 20],
          [64 * MB, 4],
        ] as const) {
          for (let i = 0; i < steps; i++, step++) {
            ranks.forEach((r) => r.proc.send({ cmd: 'run', id: `handoff/${step}/1`, n, step }));
            const replies = await Promise.all(ranks.map((r) => r.next(['done', 'failed'], 60000)));
            const failed = replies.find((r) => r.cmd === 'failed');
            assert.equal(failed, undefined, `W=${world} step ${step} (${n * 4} bytes): ${failed?.error}`);
            for (const r of replies) {
              assert.equal(r.length, n);
              assert.equal(r.wrong, 0, `W=${world} step ${step}: ${r.wrong} wrong elements`);
            }
            assert.equal(new Set(replies.map((r) => r.hash)).size, 1, `W=${world} step ${step}: ranks disagree`);
          }
        }
      } finally {
        await stopRing(ranks);
      }
    });
  }

  it('W=3: a rank killed mid-round fails the survivors at once, not after the timeout', async () => {
    const ranks = await startRing(3, { RING_TIMEOUT_MS: '60000' });
    try {
      // 256 MB: the TCP data plane moves 64 MB through a W=3 ring here in ~0.2 s, so a smaller
      // vector could finish before the kill lands (then finishing is right, and proves nothing).
      const n = 256 * MB;
      ranks.forEach((r) => r.proc.send({ cmd: 'run', id: 'kill/0/1', n, step: 0 }));
      await Promise.all(ranks.map((r) => r.next(['started'], 10000)));
      await new Promise((r) => setTimeout(r, 40)); // well inside the first rounds
      const t0 = Date.now();
      ranks[1]!.proc.kill('SIGKILL');
      const survivors = await Promise.all([ranks[0]!, ranks[2]!].map((r) => r.next(['done', 'failed'], 30000)));
      const elapsed = Date.now() - t0;
      for (const s of survivors) assert.equal(s.cmd, 'failed', 'a survivor must not finish a collective its peer died in');
      assert.ok(elapsed < 5000, `survivors took ${elapsed} ms to fail`);
    } finally {
      await stopRing(ranks);
    }
  });
});
