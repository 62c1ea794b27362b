import { ringPlace } from '@facenet/protocol';
import { strict as assert } from 'node:assert';
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { AllreducePeer, encodeHello, facenetProto, FrameReader, ringSchedule, SECRET_METADATA, segmentBounds } from '@facenet/worker';

type Transport = 'tcp' | 'grpc';
type Algorithm = 'ring' | 'recursive-doubling';

/** Real servers on 127.0.0.1:0, one per rank; `transports` per rank (default: the TCP data plane). */
async function ring(world: number, chunkBytes: number, timeoutMs = 10000, transports: Transport[] = []): Promise<AllreducePeer[]> {
  const peers = Array.from({ length: world }, (_, r) => new AllreducePeer({ chunkBytes, timeoutMs, transport: transports[r] ?? 'tcp' }));
  await Promise.all(peers.map((p) => p.start()));
  return peers;
}

function vectors(world: number, n: number, seed: number): Float32Array[] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  return Array.from({ length: world }, () => Float32Array.from({ length: n }, rnd));
}

describe('ring allreduce', function () {
  this.timeout(60000);

  it('segments and schedule cover every element and round', () => {
    assert.deepEqual(segmentBounds(10, 4), [
      [0, 3],
      [3, 6],
      [6, 8],
      [8, 10],
    ]);
    assert.deepEqual(segmentBounds(2, 4), [
      [0, 1],
      [1, 2],
      [2, 2],
      [2, 2],
    ]);
    const s = ringSchedule(1, 3);
    assert.deepEqual(
      s.map((r) => [r.send, r.receive, r.reduce]),
      [
        [1, 0, true],
        [0, 2, true],
        [2, 1, false],
        [1, 0, false],
      ],
    );
  });

  const cases: { world: number; transports: Transport[]; label: string; algorithm: Algorithm }[] = [
    ...[2, 3, 4].map((world) => ({ world, transports: [] as Transport[], label: 'TCP data plane', algorithm: 'ring' as const })),
    { world: 3, transports: ['grpc', 'grpc', 'grpc'], label: 'gRPC Pull only', algorithm: 'ring' },
    // Rank 1 pulls through gRPC; rank 2's predecessor (rank 1) offers no data plane, so rank 2 falls back to gRPC too.
    { world: 3, transports: ['tcp', 'grpc', 'tcp'], label: 'mixed: one rank without a data plane', algorithm: 'ring' },
    // Powers of two, and worlds that fold ranks in and out first.
    ...[2, 3, 4, 5, 6, 8].map((world) => ({
      world,
      transports: [] as Transport[],
      label: 'TCP data plane',
      algorithm: 'recursive-doubling' as const,
    })),
    { world: 5, transports: ['grpc', 'tcp', 'grpc', 'tcp', 'tcp'], label: 'mixed transports', algorithm: 'recursive-doubling' },
  ];
  for (const { world, transports, label, algorithm } of cases) {
    it(`${algorithm}, W=${world}, ${label}: every rank ends with the mean, for sizes off the chunk and world grid`, async () => {
      const peers = await ring(world, 64, 10000, transports); // 16 floats a chunk
      const world_ = peers.map((p) => p.address);
      try {
        for (const n of [0, 1, 2, 3, 5, 16, 17, 63, 1000, 4099]) {
          const inputs = vectors(world, n, n + world);
          const expected = Array.from({ length: n }, (_, i) => inputs.reduce((a, v) => a + v[i]!, 0) / world);
          const data = inputs.map((v) => v.slice());
          const stats = await Promise.all(
            peers.map((p, r) => p.allreduce(`job/${n}/0`, data[r]!, r, ringPlace(world_, r), '', { algorithm })),
          );
          if (n > 0) assert.ok(stats.every((s) => s.algorithm === algorithm)); // an empty vector exchanges nothing
          for (let r = 0; r < world; r++) {
            for (let i = 0; i < n; i++) {
              const got = data[r]![i]! / world;
              assert.ok(Math.abs(got - expected[i]!) <= 1e-6, `W=${world} n=${n} rank ${r} [${i}]: ${got} vs ${expected[i]}`);
            }
          }
          // All ranks hold bit-identical results (the ring: the same additions in the same order per
          // segment; doubling: a + b on one end of each exchange, b + a on the other).
          for (let r = 1; r < world; r++) assert.deepEqual(data[r], data[0]);
        }
      } finally {
        await Promise.all(peers.map((p) => p.close()));
      }
    });
  }

  for (const [transport, algorithm] of [
    ['tcp', 'ring'],
    ['grpc', 'ring'],
    ['tcp', 'recursive-doubling'],
  ] as const) {
    it(`fp16 compression (${algorithm}, ${transport}): within half precision of the float32 sum, half the bytes, every rank bit-identical`, async () => {
      const world = 3;
      const n = 100_003;
      const peers = await ring(world, 4096, 10000, Array(world).fill(transport));
      try {
        const addresses = peers.map((p) => p.address);
        const inputs = vectors(world, n, 11);
        const exact = Array.from({ length: n }, (_, i) => inputs.reduce((a, v) => a + v[i]!, 0));
        const data = inputs.map((v) => v.slice());
        const plain = inputs.map((v) => v.slice());
        const half = await Promise.all(
          peers.map((p, r) => p.allreduce('fp16/1/0', data[r]!, r, ringPlace(addresses, r), '', { compression: 'fp16', algorithm })),
        );
        const full = await Promise.all(
          peers.map((p, r) => p.allreduce('fp32/1/0', plain[r]!, r, ringPlace(addresses, r), '', { algorithm })),
        );
        let worst = 0;
        for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(data[0]![i]! - exact[i]!));
        // Inputs in [-1, 1], W=3: each of the 2W-2 = 4 hops (ring) or 3 sends (doubling) rounds once to 2^-11 relative of a value below 3.
        assert.ok(worst <= 4 * 3 * 2 ** -11, `worst error ${worst}`);
        assert.ok(worst > 0, 'the values did travel as halves');
        for (let r = 1; r < world; r++) assert.deepEqual(data[r], data[0]);
        assert.ok(Math.abs(half[0]!.bytes / full[0]!.bytes - 0.5) < 0.01, `${half[0]!.bytes} vs ${full[0]!.bytes} bytes`);
      } finally {
        await Promise.all(peers.map((p) => p.close()));
      }
    });
  }

  for (const algorithm of ['ring', 'recursive-doubling'] as const)
    it(`${algorithm}: a rank whose peer never sends times out instead of applying a partial sum`, async () => {
      const peers = await ring(3, 1 << 20, 500);
      try {
        const world = peers.map((p) => p.address);
        const data = vectors(3, 100, 1);
        // Rank 2 never joins: a rank waits on it and must fail, and its failure fails the other.
        const results = await Promise.allSettled([
          peers[0]!.allreduce('job/9/0', data[0]!, 0, ringPlace(world, 0), '', { algorithm }),
          peers[1]!.allreduce('job/9/0', data[1]!, 1, ringPlace(world, 1), '', { algorithm }),
        ]);
        assert.ok(results.every((r) => r.status === 'rejected'));
        // Whichever rank's timer fires first (rank 0 waiting for rank 2's data, or rank 1 for rank
        // 2's pull) fails, and its failure ends the other's wait at once.
        const reasons = results.map((r) => String((r as PromiseRejectedResult).reason));
        assert.ok(
          reasons.some((r) => /timed out after 500 ms|did not pull job\/9\/0(\/\d+)? within 500 ms/.test(r)),
          reasons.join('; '),
        );
      } finally {
        await Promise.all(peers.map((p) => p.close()));
      }
    });
});

describe('data-plane connections', function () {
  this.timeout(30000);

  it('are kept between collectives: ten collectives of either algorithm open no more connections than the first two', async () => {
    const peers = await ring(4, 1 << 20);
    try {
      const world = peers.map((p) => p.address);
      const accepted = () => peers.reduce((n, p) => n + p.dataConnectionsAccepted, 0);
      const run = async (k: number) => {
        const data = vectors(4, 500, k);
        const algorithm = k % 2 === 0 ? 'ring' : 'recursive-doubling';
        await Promise.all(peers.map((p, r) => p.allreduce(`keep/${k}/0`, data[r]!, r, ringPlace(world, r), '', { algorithm })));
        for (let r = 1; r < 4; r++) assert.deepEqual(data[r], data[0]);
      };
      await run(0);
      await run(1);
      const first = accepted();
      assert.ok(first >= 4, `${first} connections for a ring and a doubling at W=4`);
      for (let k = 2; k < 10; k++) await run(k);
      assert.equal(accepted(), first);
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });

  it('a rank restarted at the same address: the next collective replaces the kept connections to the old process and completes', async () => {
    const peers = await ring(3, 1 << 20);
    try {
      const world = peers.map((p) => p.address);
      const collective = async (id: string) => {
        const inputs = vectors(3, 300, 3);
        const data = inputs.map((v) => v.slice());
        await Promise.all(peers.map((p, r) => p.allreduce(id, data[r]!, r, ringPlace(world, r), '', { algorithm: 'recursive-doubling' })));
        for (let i = 0; i < 300; i++) assert.ok(Math.abs(data[2]![i]! - inputs.reduce((a, v) => a + v[i]!, 0)) < 1e-5);
      };
      await collective('restart/1/0');
      // Rank 1 restarts on the same ports: the others hold idle connections to the old process.
      const port = Number(world[1]!.split(':')[1]);
      const dataPort = (peers[1] as unknown as { dataPort: number }).dataPort;
      await peers[1]!.close();
      peers[1] = new AllreducePeer({ chunkBytes: 1 << 20, timeoutMs: 10000, port, dataPort });
      await peers[1].start();
      await collective('restart/2/0');
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
      const pending = [
        peers[0]!.allreduce('jobA/7/3', data[0]!, 0, ringPlace(world, 0)),
        peers[1]!.allreduce('jobA/7/3', data[1]!, 1, ringPlace(world, 1)),
      ];
      await new Promise((r) => setTimeout(r, 300));
      for (const p of peers) p.abandonGeneration('jobA', 3);
      const results = await Promise.allSettled(pending);
      assert.ok(results.every((r) => r.status === 'rejected'));
      assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
      await assert.rejects(peers[0]!.allreduce('jobA/8/3', data[0]!, 0, ringPlace(world, 0)), /generation abandoned/);
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });
});

describe('who may pull a collective', function () {
  this.timeout(30000);

  /** A client that is not a member of the ring: it pulls with whatever rank and secret it likes. */
  function impostor(address: string, id: string, toRank: number, secret: string): Promise<{ code: number; chunks: number }> {
    const Ctor = facenetProto().facenet.v1.AllreduceService;
    const client = new Ctor(address, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set(SECRET_METADATA, secret);
    return new Promise((resolve) => {
      let chunks = 0;
      const s = client.Pull({ collective_id: id, to_rank: toRank }, md);
      s.on('data', () => chunks++);
      s.on('error', (e: grpc.ServiceError) => {
        client.close();
        resolve({ code: e.code, chunks });
      });
      s.on('end', () => {
        client.close();
        resolve({ code: grpc.status.OK, chunks });
      });
    });
  }

  it('serves only the successor with the generation secret: a wrong secret or rank gets PERMISSION_DENIED and no data, and the real collective completes', async () => {
    const peers = await ring(3, 1 << 20);
    try {
      const world = peers.map((p) => p.address);
      const inputs = vectors(3, 1000, 5);
      const data = inputs.map((v) => v.slice());
      // Before the collective starts: one pull with a wrong secret, one with the right secret but not the successor's rank.
      const wrongSecret = impostor(world[0]!, 'auth/1/0', 1, 'guess');
      const wrongRank = impostor(world[0]!, 'auth/1/0', 2, 'gen-secret');
      await new Promise((r) => setTimeout(r, 200));
      await Promise.all(peers.map((p, r) => p.allreduce('auth/1/0', data[r]!, r, ringPlace(world, r), 'gen-secret')));
      for (const attempt of [await wrongSecret, await wrongRank]) {
        assert.equal(attempt.code, grpc.status.PERMISSION_DENIED);
        assert.equal(attempt.chunks, 0);
      }
      for (let i = 0; i < 1000; i++) assert.ok(Math.abs(data[0]![i]! - (inputs[0]![i]! + inputs[1]![i]! + inputs[2]![i]!)) < 1e-5);
      // Ranks that disagree on the secret never exchange data: the collective fails on every rank.
      const results = await Promise.allSettled(
        peers.map((p, r) => p.allreduce('auth/2/0', data[r]!, r, ringPlace(world, r), r === 1 ? 'stale' : 'gen-secret')),
      );
      assert.ok(
        results.every((r) => r.status === 'rejected'),
        JSON.stringify(results.map((r) => r.status)),
      );
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });

  it('recursive doubling serves each link only to its partner: a pull naming another rank the rank sends to, a rank it never sends to, or a wrong secret gets PERMISSION_DENIED and no data', async () => {
    const peers = await ring(4, 1 << 20);
    try {
      const world = peers.map((p) => p.address);
      const inputs = vectors(4, 1000, 9);
      const data = inputs.map((v) => v.slice());
      // Rank 0 sends to rank 1 in step 1 and to rank 2 in step 2 (and rank 1 is its ring successor).
      const attempts = [
        impostor(world[0]!, 'dauth/1/0/1', 2, 'gen-secret'), // a sink of rank 0, but not step 1's
        impostor(world[0]!, 'dauth/1/0/1', 3, 'gen-secret'), // never a sink of rank 0
        impostor(world[0]!, 'dauth/1/0/1', 1, 'guess'),
      ];
      await new Promise((r) => setTimeout(r, 200));
      const stats = await Promise.all(
        peers.map((p, r) => p.allreduce('dauth/1/0', data[r]!, r, ringPlace(world, r), 'gen-secret', { algorithm: 'recursive-doubling' })),
      );
      assert.ok(stats.every((x) => x.algorithm === 'recursive-doubling'));
      for (const attempt of await Promise.all(attempts)) {
        assert.equal(attempt.code, grpc.status.PERMISSION_DENIED);
        assert.equal(attempt.chunks, 0);
      }
      for (let i = 0; i < 1000; i++) assert.ok(Math.abs(data[3]![i]! - inputs.reduce((a, v) => a + v[i]!, 0)) < 1e-5);
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });

  /** The same impostor on the TCP data plane: the port from DataEndpoint, then a hello (or raw bytes). */
  async function tcpImpostor(
    address: string,
    id: string,
    toRank: number,
    secret: string,
    raw?: Buffer,
  ): Promise<{ code: number; reason: string; floats: number }> {
    const Ctor = facenetProto().facenet.v1.AllreduceService;
    const client = new Ctor(address, grpc.credentials.createInsecure());
    const port = await new Promise<number>((resolve, reject) =>
      client.DataEndpoint({}, (err, res) => (err ? reject(err) : resolve(res?.port ?? 0))),
    );
    client.close();
    assert.ok(port > 0, 'the rank announces a data plane');
    return new Promise((resolve) => {
      let floats = 0;
      const result = { code: -1, reason: '' };
      const reader = new FrameReader({
        data: (_r, _o, b) => (floats += b.length / 4),
        end: () => (result.code = 0),
        error: (code, reason) => Object.assign(result, { code, reason }),
      });
      const sock = connect(port, '127.0.0.1', () => sock.write(raw ?? encodeHello({ collective_id: id, to_rank: toRank, secret })));
      sock.on('data', (b: Buffer) => reader.push(b));
      sock.on('close', () => resolve({ ...result, floats }));
    });
  }

  it('the TCP data plane authenticates like Pull: a wrong secret or rank is refused with PERMISSION_DENIED and no data, a malformed hello with INVALID_ARGUMENT', async () => {
    const peers = await ring(3, 1 << 20);
    try {
      const world = peers.map((p) => p.address);
      const inputs = vectors(3, 1000, 6);
      const data = inputs.map((v) => v.slice());
      const wrongSecret = tcpImpostor(world[0]!, 'tauth/1/0', 1, 'guess');
      const wrongRank = tcpImpostor(world[0]!, 'tauth/1/0', 2, 'gen-secret');
      await new Promise((r) => setTimeout(r, 200));
      await Promise.all(peers.map((p, r) => p.allreduce('tauth/1/0', data[r]!, r, ringPlace(world, r), 'gen-secret')));
      for (const attempt of [await wrongSecret, await wrongRank]) {
        assert.equal(attempt.code, grpc.status.PERMISSION_DENIED, attempt.reason);
        assert.match(attempt.reason, /not a rank this one sends to, or a wrong secret/);
        assert.equal(attempt.floats, 0);
      }
      for (let i = 0; i < 1000; i++) assert.ok(Math.abs(data[0]![i]! - (inputs[0]![i]! + inputs[1]![i]! + inputs[2]![i]!)) < 1e-5);
      const lenPrefixed = (s: string) => Buffer.concat([Buffer.from([s.length, 0, 0, 0]), Buffer.from(s)]);
      const garbage = await tcpImpostor(world[0]!, '', 0, '', lenPrefixed('{"collective_id":"x"}'));
      assert.equal(garbage.code, grpc.status.INVALID_ARGUMENT);
      assert.match(garbage.reason, /hello lacks a to_rank/);
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });

  it("holds a stranger's pulls for unknown generations only 4 per host, refuses them at once for known ones, and never refuses the rank's own collectives", async () => {
    const peers = await ring(2, 1 << 20);
    const world = peers.map((p) => p.address);
    try {
      // Made-up collectives of generations nobody announced: a few held, the rest refused at once.
      const attempts = Array.from({ length: 300 }, (_, i) => impostor(world[0]!, `made-up/${i}/0`, 1, 'x'));
      const first = await Promise.race([Promise.all(attempts.slice(4)), new Promise((r) => setTimeout(() => r('held'), 5000))]);
      assert.notEqual(first, 'held', 'pulls beyond the per-host bound must be refused at once');
      for (const r of first as { code: number }[]) assert.equal(r.code, grpc.status.RESOURCE_EXHAUSTED);
      // A generation this rank knows (its shard job arrived): a stranger is refused on arrival, and holds nothing.
      peers[0]!.expectGeneration('job', 3, 0, 2, 'gen-secret');
      const t0 = Date.now();
      const stranger = await impostor(world[0]!, 'job/7/3', 1, 'guess');
      assert.equal(stranger.code, grpc.status.PERMISSION_DENIED);
      assert.ok(Date.now() - t0 < 2000, 'refused at once, not held');
      // With the unproven pool full of strangers, the ring's own collectives still run.
      const inputs = vectors(2, 5000, 9);
      const data = inputs.map((v) => v.slice());
      await Promise.all(peers.map((p, r) => p.allreduce('job/7/3', data[r]!, r, ringPlace(world, r), 'gen-secret')));
      for (let i = 0; i < 5000; i += 97) assert.ok(Math.abs(data[1]![i]! - (inputs[0]![i]! + inputs[1]![i]!)) < 1e-5);
      // A held stranger is judged as soon as its generation is known: refused, never served.
      const held = impostor(world[1]!, 'later/1/0', 0, 'guess');
      await new Promise((r) => setTimeout(r, 200));
      peers[1]!.expectGeneration('later', 0, 1, 2, 'gen-secret');
      assert.deepEqual(await held, { code: grpc.status.PERMISSION_DENIED, chunks: 0 });
    } finally {
      await Promise.all(peers.map((p) => p.close()));
    }
  });
});
