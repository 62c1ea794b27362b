import { strict as assert } from 'node:assert';
import { planWorldChange } from '@facenet/coordinator';
import type { JobRecord, WorkerInfo } from '@facenet/protocol';

const w = (id: string, draining = false): WorkerInfo => ({
  id,
  address: `${id}:1`,
  host: 'h',
  pid: 1,
  backend: 'wasm',
  startedAt: '',
  ...(draining ? { draining } : {}),
});
const job = (world: string[], worldSize: number) =>
  ({ id: 'j', world: world.map((id) => ({ workerId: id, address: `${id}:1` })), spec: { worldSize } }) as unknown as JobRecord;

describe('world change at a step boundary (pure)', () => {
  it('none while every member is alive, none drains and the world is full', () => {
    assert.equal(planWorldChange(job(['a', 'b'], 2), [w('a'), w('b'), w('c')], new Set()), undefined);
  });

  it('a draining member leaves, keeping the others in rank order, and an idle worker fills its place', () => {
    const c = planWorldChange(job(['a', 'b', 'c'], 3), [w('a'), w('b', true), w('c'), w('d')], new Set())!;
    assert.deepEqual(
      c.survivors.map((x) => x.id),
      ['a', 'c'],
    );
    assert.deepEqual(
      c.leaving.map((x) => x.id),
      ['b'],
    );
    assert.deepEqual(
      c.joiners.map((x) => x.id),
      ['d'],
    );
    assert.deepEqual(c.lost, []);
  });

  it('a member whose registration expired is lost; workers busy in another job or draining never join', () => {
    const c = planWorldChange(job(['a', 'b'], 3), [w('a'), w('x'), w('y', true), w('z')], new Set(['x']))!;
    assert.deepEqual(c.lost, ['b']);
    assert.deepEqual(
      c.joiners.map((x) => x.id),
      ['z'],
    );
  });

  it('grows up to worldSize only', () => {
    const c = planWorldChange(job(['a'], 2), [w('a'), w('b'), w('c')], new Set())!;
    assert.deepEqual(
      c.joiners.map((x) => x.id),
      ['b'],
    );
  });
});
