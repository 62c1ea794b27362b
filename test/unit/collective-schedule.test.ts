import { strict as assert } from 'node:assert';
import { doublingSinks, doublingSources, recursiveDoublingSchedule, ringPlace } from '@facenet/protocol';

/**
 * Runs every rank's recursive-doubling schedule in lockstep on symbolic vectors (sets of the ranks
 * whose inputs a rank holds, as counts): each rank must end with every input exactly once.
 */
function simulate(world: number): number[][] {
  const held: number[][] = Array.from({ length: world }, (_, r) => Array.from({ length: world }, (_, i) => (i === r ? 1 : 0)));
  const schedules = Array.from({ length: world }, (_, r) => recursiveDoublingSchedule(r, world));
  const last = Math.max(0, ...schedules.flat().map((s) => s.step));
  for (let step = 0; step <= last; step++) {
    const sent = new Map<string, number[]>(); // "from->to" -> the vector sent at this step
    for (let r = 0; r < world; r++)
      for (const s of schedules[r]!.filter((x) => x.step === step && x.sendTo !== undefined))
        sent.set(`${r}->${s.sendTo}`, held[r]!.slice());
    for (let r = 0; r < world; r++)
      for (const s of schedules[r]!.filter((x) => x.step === step && x.receiveFrom !== undefined)) {
        const v = sent.get(`${s.receiveFrom}->${r}`);
        assert.ok(v, `W=${world} step ${step}: rank ${r} expects data from ${s.receiveFrom}, which sends none to it`);
        held[r] = s.receive === 'add' ? held[r]!.map((x, i) => x + v[i]!) : v.slice();
        sent.delete(`${s.receiveFrom}->${r}`);
      }
    assert.equal(sent.size, 0, `W=${world} step ${step}: sent but never received: ${[...sent.keys()].join(', ')}`);
  }
  return held;
}

describe('recursive doubling schedule', () => {
  it('every rank ends with every input exactly once, for W = 1..70', () => {
    for (let world = 1; world <= 70; world++) {
      const held = simulate(world);
      for (let r = 0; r < world; r++) assert.deepEqual(held[r], Array(world).fill(1), `W=${world} rank ${r}`);
    }
  });

  it('takes log2 W exchanges, plus a fold in and out when W is not a power of two', () => {
    const steps = (w: number) => Math.max(...Array.from({ length: w }, (_, r) => recursiveDoublingSchedule(r, w).length));
    assert.deepEqual([2, 4, 8, 16, 256].map(steps), [1, 2, 3, 4, 8]);
    assert.deepEqual([3, 5, 12, 255].map(steps), [3, 4, 5, 9]);
  });

  it("sources and sinks agree (r receives from s exactly when s sends to r), and the shard job's place names each source's address", () => {
    for (const world of [2, 3, 6, 8, 13]) {
      const addresses = Array.from({ length: world }, (_, r) => `10.0.0.${r}:7000`);
      for (let r = 0; r < world; r++) {
        for (const s of doublingSources(r, world)) assert.ok(doublingSinks(s, world).includes(r), `W=${world}: ${s} -> ${r}`);
        const place = ringPlace(addresses, r);
        assert.equal(place.predecessor, addresses[(r - 1 + world) % world]);
        assert.deepEqual(
          place.partners,
          doublingSources(r, world).map((s) => addresses[s]),
        );
        assert.ok(place.partners!.length <= Math.ceil(Math.log2(world)) + 1);
      }
    }
  });
});
