import { strict as assert } from 'node:assert';
import { parseQueues, planAllowances, SchedJob } from '@facenet/coordinator';

const job = (id: string, o: Partial<SchedJob> = {}): SchedJob => ({
  id,
  queue: 'default',
  priority: 0,
  order: Number(id.replace(/\D/g, '')) || 0,
  worldSize: 1,
  minRanks: 1,
  holds: 0,
  ...o,
});
const queues = parseQueues('');

describe('scheduler: quotas, priorities, fair share, gang, backfill and preemption', () => {
  it('gang: a job whose minimum does not fit holds nothing and is the blocked head', () => {
    const s = planAllowances([job('j1', { worldSize: 4, minRanks: 4 })], queues, 3);
    assert.equal(s.allowance.get('j1'), 0);
    assert.equal(s.blocked, 'j1');
    assert.deepEqual(s.preemptions, []);
  });

  it('a higher-priority job shrinks a lower one of its queue to its minimum (elastic), then takes the ranks', () => {
    const low = job('j1', { worldSize: 4, minRanks: 2, holds: 4 });
    const high = job('j2', { worldSize: 2, minRanks: 2, priority: 10 });
    const s = planAllowances([low, high], queues, 0);
    assert.deepEqual(s.preemptions, [{ victim: 'j1', to: 2, by: 'j2', reason: 'priority' }]);
    assert.equal(s.allowance.get('j1'), 2);
    assert.equal(s.allowance.get('j2'), 2);
  });

  it('a victim that cannot shrink enough is stopped (to 0: checkpointed and requeued); equal priority never preempts', () => {
    const s = planAllowances(
      [job('j1', { worldSize: 4, minRanks: 4, holds: 4 }), job('j2', { worldSize: 2, minRanks: 2, priority: 1 })],
      queues,
      0,
    );
    assert.deepEqual(s.preemptions, [{ victim: 'j1', to: 0, by: 'j2', reason: 'priority' }]);
    const same = planAllowances([job('j1', { worldSize: 4, minRanks: 2, holds: 4 }), job('j2', { worldSize: 2, minRanks: 2 })], queues, 0);
    assert.deepEqual(same.preemptions, []);
    assert.equal(same.allowance.get('j2'), 0);
  });

  it('a queue under its nominal ranks reclaims them from a queue that borrowed', () => {
    const qs = parseQueues('a=4:1,b=4:1');
    const borrowers = [1, 2].map((i) => job(`b${i}`, { queue: 'b', worldSize: 4, minRanks: 2, holds: 4, order: i }));
    const s = planAllowances([...borrowers, job('a9', { queue: 'a', worldSize: 4, minRanks: 4, order: 9 })], qs, 0);
    assert.equal(s.allowance.get('a9'), 4);
    assert.deepEqual(
      s.preemptions.map((p) => [p.victim, p.to, p.reason]),
      [
        ['b2', 2, 'reclaim'],
        ['b1', 2, 'reclaim'],
      ],
    );
    // Within its nominal share a queue is not a victim: b holds 4 of its 4.
    const within = planAllowances([borrowers[0]!, job('a9', { queue: 'a', worldSize: 4, minRanks: 4 })], qs, 0);
    assert.deepEqual(within.preemptions, []);
  });

  it('fair share: idle ranks split by queue weight (3:1) when both queues have more work than ranks', () => {
    const qs = parseQueues('a=0:3,b=0:1');
    const jobs = [...Array(10)].flatMap((_, i) => [job(`a${i}`, { queue: 'a', order: i }), job(`b${i}`, { queue: 'b', order: 100 + i })]);
    const s = planAllowances(jobs, qs, 8);
    const held = (q: string) => jobs.filter((j) => j.queue === q).reduce((n, j) => n + (s.allowance.get(j.id) ?? 0), 0);
    assert.deepEqual([held('a'), held('b')], [6, 2]);
  });

  it('backfill: a small job may use idle ranks while the head waits, flagged; the head takes them back when it can start', () => {
    const head = job('j1', { worldSize: 4, minRanks: 4 });
    const small = job('j2', { worldSize: 1, minRanks: 1 });
    const first = planAllowances([job('j0', { worldSize: 2, minRanks: 2, holds: 2 }), head, small], queues, 2);
    assert.equal(first.blocked, 'j1');
    assert.equal(first.allowance.get('j2'), 1);
    assert.equal(first.backfilled.get('j2'), 'j1');
    // j0 finished: 3 idle ranks + the backfilled rank = the head's 4.
    const next = planAllowances([head, { ...small, holds: 1, backfilledFor: 'j1' }], queues, 3);
    assert.deepEqual(next.preemptions, [{ victim: 'j2', to: 0, by: 'j1', reason: 'backfill' }]);
    assert.equal(next.allowance.get('j1'), 4);
    // Only the head whose reservation it borrowed takes a backfilled job's ranks back.
    const other = planAllowances([job('j3', { worldSize: 4, minRanks: 4 }), { ...small, holds: 1, backfilledFor: 'j1' }], queues, 3);
    assert.deepEqual(other.preemptions, []);
  });

  it('idle ranks grow a shrunk job back to its worldSize once nobody waits', () => {
    const s = planAllowances([job('j1', { worldSize: 4, minRanks: 2, holds: 2 })], queues, 2);
    assert.equal(s.allowance.get('j1'), 4);
    const waiting = planAllowances(
      [job('j1', { worldSize: 4, minRanks: 2, holds: 2 }), job('j2', { worldSize: 8, minRanks: 8 })],
      queues,
      2,
    );
    assert.equal(waiting.allowance.get('j1'), 2, 'no growth while a job waits for ranks');
  });

  it('FACENET_QUEUES parses name=nominal:weight and names a bad entry', () => {
    assert.deepEqual(parseQueues('research=32:4, prod=16:2'), [
      { name: 'default', nominalRanks: 0, weight: 1 },
      { name: 'research', nominalRanks: 32, weight: 4 },
      { name: 'prod', nominalRanks: 16, weight: 2 },
    ]);
    for (const bad of ['research', 'a=1', 'A=1:1', 'a=1:0', 'a=-1:1', 'a=1:x'])
      assert.throws(() => parseQueues(bad), /FACENET_QUEUES/, bad);
  });
});
