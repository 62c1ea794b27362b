import { ringPlace } from '@facenet/protocol';
/**
 * Allreduce bus bandwidth, 2(W-1)/W x bytes / seconds, of the ring on each transport (the TCP
 * data plane and gRPC Pull streams), beside two raw loopback TCP baselines between two Node
 * processes, all in one run. Each rank is its own process.
 *   rawTcp: one process sends `bytes` to the other (the yardstick);
 *   rawTcpBoth: both send `bytes` to each other at once - the traffic a W=2 ring moves through
 *     the kernel, without the reduce. On one 2-core machine loopback copies are CPU work, so this
 *     is the ceiling a W=2 ring can approach here.
 *
 *   npx tsx bench/allreduce-bandwidth.ts [--world 2] [--sizes-mb 4,16,64,256] [--reps 5] [--chunk-kb 1024] [--transports tcp,tcp+fp16,grpc]
 *
 * 'tcp+fp16' is the TCP data plane with fp16 compression: its bus bandwidth counts the float32
 * bytes reduced (what the caller gets), so it can exceed the wire's. '+tls' runs the transport
 * under mutual TLS (the default of `facenet up` and the manifests), with an ephemeral CA made
 * as `facenet up` makes one; `tlsOverPlain` compares it with the same transport without TLS
 * when both run (e.g. --transports tcp,tcp+tls).
 *
 * Prints JSON: per size the median seconds and GB/s of each method, and each ring / rawTcp.
 * BENCH_CPU_PROF=DIR writes a CPU profile of every child process there.
 */
import { fork, ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { parseArgs } from 'node:util';
import { ask, Msg } from './child-ipc';

const { values } = parseArgs({
  options: {
    world: { type: 'string', default: '2' },
    'sizes-mb': { type: 'string', default: '4,16,64,256' },
    reps: { type: 'string', default: '5' },
    'chunk-kb': { type: 'string', default: '1024' },
    transports: { type: 'string', default: 'tcp,tcp+fp16,grpc' },
    transport: { type: 'string', default: 'tcp' },
    role: { type: 'string' },
  },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** A rank: serves allreduce, runs collectives on command (the ring unless `algorithm` says otherwise). Also forked by bench/allreduce-latency.ts. */
async function rankProcess(): Promise<void> {
  const { AllreducePeer } = await import('@facenet/worker');
  const [transport, ...flags] = values.transport.split('+') as ['tcp' | 'grpc', ...string[]];
  const compression = flags.includes('fp16') ? 'fp16' : undefined;
  const tls = flags.includes('tls')
    ? (JSON.parse(process.env.BENCH_RING_TLS as string) as { ca: string; cert: string; key: string })
    : undefined;
  const peer = new AllreducePeer({ chunkBytes: Number(values['chunk-kb']) * 1024, timeoutMs: 600_000, transport, tls });
  const address = await peer.start();
  let world: string[] = [];
  let rank = 0;
  process.send?.({ cmd: 'address', address });
  process.on('message', async (m: Msg) => {
    if (m.cmd === 'world') {
      world = m.world as string[];
      rank = m.rank as number;
      process.send?.({ cmd: 'ok' });
    }
    if (m.cmd === 'run') {
      const data = new Float32Array(m.n as number).fill(rank + 1);
      const t0 = performance.now();
      const algorithm = (m.algorithm as 'ring' | 'recursive-doubling' | undefined) ?? 'ring';
      await peer.allreduce(m.id as string, data, rank, ringPlace(world, rank), '', { compression, algorithm });
      const seconds = (performance.now() - t0) / 1000;
      const expected = (world.length * (world.length + 1)) / 2;
      process.send?.({ cmd: 'done', seconds, correct: data[0] === expected && data[data.length - 1] === expected });
    }
    if (m.cmd === 'exit') {
      await peer.close();
      process.exit(0);
    }
  });
}

/** Raw TCP: the receiver acknowledges once it has every byte; asked to, it sends as many back at once. */
async function tcpReceiver(): Promise<void> {
  const server = createServer((sock) => {
    let want = 0;
    let got = 0;
    sock.on('data', (buf) => {
      if (want === 0) {
        const n = buf.readUInt32LE(0);
        want = n * 4 + 5;
        if (buf.readUInt8(4) === 1) sock.write(Buffer.alloc(n * 4));
      }
      got += buf.length;
      if (got >= want) {
        sock.write('k');
        want = 0;
        got = 0;
      }
    });
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ cmd: 'address', port: (server.address() as { port: number }).port }));
}

/** Seconds until the receiver has all n floats; with `both`, it also sends n floats back at once. */
async function tcpSend(port: number, n: number, both: boolean): Promise<number> {
  const sock = connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const payload = Buffer.alloc(n * 4 + 5);
  payload.writeUInt32LE(n, 0);
  payload.writeUInt8(both ? 1 : 0, 4);
  let got = 0;
  const t0 = performance.now();
  const acked = new Promise<void>((resolve) =>
    sock.on('data', (b: Buffer) => {
      got += b.length;
      if (got >= (both ? n * 4 + 1 : 1)) resolve();
    }),
  );
  sock.write(payload);
  await acked;
  const s = (performance.now() - t0) / 1000;
  sock.destroy();
  return s;
}

async function main(): Promise<void> {
  if (values.role === 'rank') return rankProcess();
  if (values.role === 'tcp') return tcpReceiver();
  const W = Number(values.world);
  if (values.transports.includes('tls')) {
    const { makeRingTls } = await import('../packages/cli/dist/cluster/ephemeral-ca.js');
    const t = await makeRingTls();
    process.env.BENCH_RING_TLS = JSON.stringify({ ca: t.ca, cert: t.cert, key: t.key });
  }
  const spawnRole = (role: string, transport = 'tcp') =>
    fork(__filename, ['--role', role, '--chunk-kb', values['chunk-kb'], '--transport', transport], {
      execArgv: ['--import', 'tsx', ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [])],
    });
  const transports = values.transports.split(',');
  const rings = new Map<string, ChildProcess[]>();
  for (const t of transports) {
    const ranks = Array.from({ length: W }, () => spawnRole('rank', t));
    const addresses = await Promise.all(
      ranks.map((c) => new Promise<string>((r) => c.once('message', (m: Msg) => r(m.address as string)))),
    );
    await Promise.all(ranks.map((c, rank) => ask(c, { cmd: 'world', world: addresses, rank }, 'ok')));
    rings.set(t, ranks);
  }
  const tcp = spawnRole('tcp');
  const tcpPort = await new Promise<number>((r) => tcp.once('message', (m: Msg) => r(m.port as number)));
  const reps = Number(values.reps) + 1; // the first rep of each method warms up
  const results = [];
  let seq = 0;
  for (const mb of values['sizes-mb'].split(',').map(Number)) {
    const n = Math.floor((mb * 1024 * 1024) / 4);
    const bytes = n * 4;
    const row: Record<string, unknown> = { megabytes: mb };
    const times = new Map<string, number[]>();
    let correct = true;
    // Methods interleave rep by rep, so a noisy moment hits all of them alike.
    for (let rep = 0; rep < reps; rep++) {
      for (const [t, ranks] of rings) {
        const id = `bench/${seq++}/0`;
        const done = await Promise.all(ranks.map((c) => ask(c, { cmd: 'run', id, n }, 'done')));
        correct &&= done.every((d) => d.correct === true);
        if (rep > 0) times.set(t, [...(times.get(t) ?? []), Math.max(...done.map((d) => d.seconds as number))]);
      }
      for (const both of [false, true]) {
        const s = await tcpSend(tcpPort, n, both);
        const key = both ? 'rawTcpBoth' : 'rawTcp';
        if (rep > 0) times.set(key, [...(times.get(key) ?? []), s]);
      }
    }
    const raw = bytes / median(times.get('rawTcp') as number[]) / 1e9;
    row.rawTcp = { seconds: median(times.get('rawTcp') as number[]), GBps: raw };
    row.rawTcpBoth = {
      seconds: median(times.get('rawTcpBoth') as number[]),
      GBpsEachWay: bytes / median(times.get('rawTcpBoth') as number[]) / 1e9,
    };
    for (const t of transports) {
      const s = median(times.get(t) as number[]);
      const bus = (((2 * (W - 1)) / W) * bytes) / s / 1e9;
      row[t] = {
        seconds: s,
        busGBps: bus,
        overRawTcp: bus / raw,
        overRawTcpBoth: bus / (row.rawTcpBoth as { GBpsEachWay: number }).GBpsEachWay,
      };
    }
    for (const t of transports.filter((x) => x.includes('+tls'))) {
      const plain = t.replace('+tls', '');
      if (row[plain])
        (row[t] as Record<string, number>).tlsOverPlain =
          (row[plain] as { seconds: number }).seconds / (row[t] as { seconds: number }).seconds;
    }
    row.correct = correct;
    results.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
  for (const ranks of rings.values()) for (const c of ranks) c.send({ cmd: 'exit' });
  tcp.kill();
  process.stdout.write(
    `${JSON.stringify({ benchmark: 'allreduce-bandwidth', world: W, chunkKB: Number(values['chunk-kb']), reps: Number(values.reps), results }, null, 2)}\n`,
  );
}

void main();
