import { strict as assert } from 'node:assert';
import { AllreducePeer, ringSchedule, segmentBounds } from '@facenet/worker';

/** Real gRPC servers on 127.0.0.1:0, one per rank. */
async function ring(world: number, chunkBytes: number, timeoutMs = 10000): Promise<AllreducePeer[]> {
  const peers = Array.from({ length: world }, () => new AllreducePeer({ chunkBytes, timeoutMs }));
  await Promise.all(peers.map((p) => p.start()));
  return peers;
}

function vectors(world: number, n: number, seed: number): Float32Array[] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  return Array.from({ length: world }, () => Float32Array.from({ length: n }, rnd));
}

describe('ring allreduce over gRPC', function () {
  this.timeout(60000);

  it('segments and schedule cover every element and round', () => {
    assert.deepEqual(segmentBounds(10, 4), [[0, 3], [3, 6], [6, 8], [8, 10]]);
    assert.deepEqual(segmentBounds(2, 4), [[0, 1], [1, 2], [2, 2], [2, 2]]);
    const s = ringSchedule(1, 3);
    assert.deepEqual(s.map((r) => [r.send, r.receive, r.reduce]), [[1, 0, true], [0, 2, true], [2, 1, false], [1, 0, false]]);
  });

  for (const world of [2, 3, 4]) {
    it(`W=${world}: every rank ends with the mean, for sizes off the chunk and world grid`, async () => {
      const peers = await ring(world, 64); // 16 floats a chunk
      const world_ = peers.map((p) => p.address);
      try {
        for (const n of [0, 1, 2, 3, 5, 16, 17, 63, 1000, 4099]) {
          const inputs = vectors(world, n, n + world);
          const expected = Array.from({ length: n }, (_, i) => inputs.reduce((a, v) => a + v[i]!, 0) / world);
          const data = inputs.map((v) => v.slice());
          await Promise.all(peers.map((p, r) => p.allreduce(`job/${n}/0`, data[r]!, r, world_)));
          for (let r = 0; r < world; r++) {
            for (let i = 0; i < n; i++) {
              const got = data[r]![i]! / world;
              assert.ok(Math.abs(got - expected[i]!) <= 1e-6, `W=${world} n=${n} rank ${r} [${i}]: ${got} vs ${expected[i]}`);
            }
          }
          // All ranks hold bit-identical results (the same additions in the same order per segment).
          for (let r = 1; r < world; r++) assert.deepEqual(data[r], data[0]);
        }
      } finally {
        await Promise.all(peers.map((p) => p.close()));
      }
    });
  }

  it('a rank whose predecessor never sends times out instead of applying a partial sum', async () => {
    const peers = await ring(3, 1 << 20, 500);
    try {
      const world = peers.map((p) => p.address);
      const data = vectors(3, 100, 1);
      // Rank 2 never joins: rank 0 waits on it and must fail.
      const results = await Promise.allSettled([peers[0]!.allreduce('job/x/0', data[0]!, 0, world), peers[1]!.allreduce('job/x/0', data[1]!, 1, world)]);
      assert.ok(results.every((r) => r.status === 'rejected'));
      assert.match(String((results[0] as PromiseRejectedResult).reason), /allreduce job\/x\/0 \(rank 0\): timed out/);
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });
});

describe('abandoning a generation', function () {
  this.timeout(30000);

  it('fails a rank waiting for a dead successor at once, not after the timeout', async () => {
    const peers = await ring(3, 1 << 20, 20000);
    try {
      const world = peers.map((p) => p.address);
      const data = vectors(3, 100, 2);
      // Ranks 0 and 1 start; rank 2 (0's predecessor, 1's successor) never does.
      const started = Date.now();
      const pending = [peers[0]!.allreduce('jobA/7/3', data[0]!, 0, world), peers[1]!.allreduce('jobA/7/3', data[1]!, 1, world)];
      await new Promise((r) => setTimeout(r, 300));
      for (const p of peers) p.abandonGeneration('jobA', 3);
      const results = await Promise.allSettled(pending);
      assert.ok(results.every((r) => r.status === 'rejected'));
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
      await assert.rejects(peers[0]!.allreduce('jobA/8/3', data[0]!, 0, world), /generation abandoned/);
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });
});
