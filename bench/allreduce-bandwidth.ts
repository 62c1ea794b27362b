/**
 * Allreduce bus bandwidth, 2(W-1)/W x bytes / seconds, for the gRPC ring, beside raw loopback TCP between two Node processes, all in one
 * run. Each rank is its own process.
 *
 *   npx tsx bench/allreduce-bandwidth.ts [--world 2] [--sizes-mb 4,16,64,256] [--reps 5] [--chunk-kb 1024]
 *
 * Prints JSON: per size the median seconds and GB/s of each method, and ring / TCP.
 */
import { fork, ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    world: { type: 'string', default: '2' },
    'sizes-mb': { type: 'string', default: '4,16,64,256' },
    reps: { type: 'string', default: '5' },
    'chunk-kb': { type: 'string', default: '1024' },
    role: { type: 'string' },
  },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
type Msg = { cmd: string; [k: string]: unknown };

/** A rank: serves allreduce, runs collectives on command. */
async function rankProcess(): Promise<void> {
  const { AllreducePeer } = await import('@facenet/worker');
  const peer = new AllreducePeer({ chunkBytes: Number(values['chunk-kb']) * 1024, timeoutMs: 600_000 });
  const address = await peer.start();
  let world: string[] = [];
  let rank = 0;
  process.send?.({ cmd: 'address', address });
  process.on('message', async (m: Msg) => {
    if (m.cmd === 'world') { world = m.world as string[]; rank = m.rank as number; process.send?.({ cmd: 'ok' }); }
    if (m.cmd === 'run') {
      const data = new Float32Array(m.n as number).fill(rank + 1);
      const t0 = performance.now();
      await peer.allreduce(m.id as string, data, rank, world);
      const seconds = (performance.now() - t0) / 1000;
      const expected = (world.length * (world.length + 1)) / 2;
      process.send?.({ cmd: 'done', seconds, correct: data[0] === expected && data[data.length - 1] === expected });
    }
    if (m.cmd === 'exit') { await peer.close(); process.exit(0); }
  });
}

/** Raw TCP: the receiver acknowledges once it has every byte. */
async function tcpReceiver(): Promise<void> {
  const server = createServer((sock) => {
    let want = 0;
    let got = 0;
    sock.on('data', (buf) => {
      if (want === 0) { want = buf.readUInt32LE(0) * 4 + 4; }
      got += buf.length;
      if (got >= want) { sock.write('k'); want = 0; got = 0; }
    });
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ cmd: 'address', port: (server.address() as { port: number }).port }));
}

async function tcpSend(port: number, n: number): Promise<number> {
  const sock = connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const payload = Buffer.alloc(n * 4 + 4);
  payload.writeUInt32LE(n, 0);
  const t0 = performance.now();
  sock.write(payload);
  await new Promise((r) => sock.once('data', r));
  const s = (performance.now() - t0) / 1000;
  sock.destroy();
  return s;
}

function ask(child: ChildProcess, msg: Msg, reply: string): Promise<Msg> {
  return new Promise((resolve) => {
    const on = (m: Msg) => { if (m.cmd === reply) { child.off('message', on); resolve(m); } };
    child.on('message', on);
    child.send(msg);
  });
}

async function main(): Promise<void> {
  if (values.role === 'rank') return rankProcess();
  if (values.role === 'tcp') return tcpReceiver();
  const W = Number(values.world);
  const spawnRole = (role: string) => fork(__filename, ['--role', role, '--chunk-kb', values['chunk-kb']], { execArgv: ['--import', 'tsx'] });
  const ranks = Array.from({ length: W }, () => spawnRole('rank'));
  const addresses = await Promise.all(ranks.map((c) => new Promise<string>((r) => c.once('message', (m: Msg) => r(m.address as string)))));
  await Promise.all(ranks.map((c, rank) => ask(c, { cmd: 'world', world: addresses, rank }, 'ok')));
  const tcp = spawnRole('tcp');
  const tcpPort = await new Promise<number>((r) => tcp.once('message', (m: Msg) => r(m.port as number)));
  const results = [];
  let seq = 0;
  for (const mb of values['sizes-mb'].split(',').map(Number)) {
    const n = Math.floor((mb * 1024 * 1024) / 4);
    const bytes = n * 4;
    const row: Record<string, unknown> = { megabytes: mb };
    for (const method of ['ring']) {
      const times: number[] = [];
      let correct = true;
      for (let rep = 0; rep < Number(values.reps) + 1; rep++) {
        const id = `bench/${seq++}/0`;
        const done = await Promise.all(ranks.map((c) => ask(c, { cmd: 'run', id, n, method }, 'done')));
        correct &&= done.every((d) => d.correct === true);
        if (rep > 0) times.push(Math.max(...done.map((d) => d.seconds as number))); // first rep warms up
      }
      const s = median(times);
      row[method] = { seconds: s, busGBps: ((2 * (W - 1)) / W) * bytes / s / 1e9, correct };
    }
    const tcpTimes: number[] = [];
    for (let rep = 0; rep < Number(values.reps) + 1; rep++) {
      const s = await tcpSend(tcpPort, n);
      if (rep > 0) tcpTimes.push(s);
    }
    const ts = median(tcpTimes);
    row.rawTcp = { seconds: ts, GBps: bytes / ts / 1e9 };
    row.ringOverTcp = (row.ring as { busGBps: number }).busGBps / (bytes / ts / 1e9);
    results.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  }
  for (const c of ranks) c.send({ cmd: 'exit' });
  tcp.kill();
  process.stdout.write(`${JSON.stringify({ benchmark: 'allreduce-bandwidth', world: W, chunkKB: Number(values['chunk-kb']), reps: Number(values.reps), results }, null, 2)}\n`);
}

void main();
