import { strict as assert } from 'node:assert';
import { connect } from 'node:net';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { encodeHello, facenetProto, SECRET_METADATA } from '@facenet/worker';
import { api, JobView, startCluster, TestCluster, waitForState } from '../cluster-helpers';
import { ORL, tempDir } from '../helpers';

/**
 * An outsider with no secret floods a worker's ring ports (gRPC Pull and the TCP data plane)
 * with pulls for made-up collectives, and for the running job's own ids, reopening as fast as it
 * is answered, while a W=2 job trains (plaintext ring, so only the collective secret protects it).
 * Before: the rank's pending-pull slots filled, its own collectives were refused, the job failed.
 */
describe('a flood of strangers on a ring port during a job', function () {
  this.timeout(300000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;

  before(async () => {
    t = tempDir('facenet-flood-');
    cluster = await startCluster(2, join(t.dir, 'ckpt'), {}, ['--no-miner', '--no-evaluator', '--insecure-ring']);
  });
  after(async () => {
    await cluster?.stop();
    t?.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(cluster.logs.slice(-60).join('\n'));
  });

  it('costs the job nothing: zero faults, and it completes', async () => {
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', {
      dataset: { kind: 'folder', path: ORL },
      holdout: 10,
      worldSize: 2,
      train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 8, K: 4 }, virtualShards: 2, steps: 60, checkpointEvery: 20 },
    });
    const workers = await api<{ address: string }[]>(cluster.url, 'GET', '/v1/workers');
    const target = workers[0]!.address;
    const Ctor = facenetProto().facenet.v1.AllreduceService;
    const client = new Ctor(target, grpc.credentials.createInsecure());
    const dataPort = await new Promise<number>((resolve, reject) =>
      client.DataEndpoint({}, (err, res) => (err ? reject(err) : resolve(res?.port ?? 0))),
    );
    let stop = false;
    const answered = new Map<string, number>();
    const count = (code: number) =>
      answered.set(grpc.status[code] ?? String(code), (answered.get(grpc.status[code] ?? String(code)) ?? 0) + 1);
    let n = 0;
    // Made-up collectives, and the job's own ids with a guessed secret (step and generation vary).
    const nextId = () => (n++ % 2 === 0 ? `made-up-${n}/${n}/0` : `${job.id}/${n % 50}/${1 + (n % 3)}`);
    const grpcLoop = async () => {
      while (!stop) {
        await new Promise<void>((resolve) => {
          const md = new grpc.Metadata();
          md.set(SECRET_METADATA, 'guess');
          const s = client.Pull({ collective_id: nextId(), to_rank: 1 }, md, { deadline: Date.now() + 15_000 });
          s.on('data', () => count(-1)); // any data at all would be a leak
          s.on('error', (e: grpc.ServiceError) => (count(e.code), resolve()));
        });
      }
    };
    const tcpLoop = async () => {
      while (!stop) {
        await new Promise<void>((resolve) => {
          const sock = connect(dataPort, '127.0.0.1', () =>
            sock.write(encodeHello({ collective_id: nextId(), to_rank: 1, secret: 'guess' })),
          );
          const stuck = setTimeout(() => sock.destroy(), 15_000); // bounded, whatever the server does
          sock.on('error', () => undefined);
          sock.on('close', () => (clearTimeout(stuck), count(-2), resolve()));
        });
      }
    };
    // 25 s of flood (as the attack that failed a job did: ~13,800 pulls in 25 s), then the job must finish.
    const loops = [...Array.from({ length: 24 }, grpcLoop), ...Array.from({ length: 12 }, tcpLoop)];
    const deadline = setTimeout(() => (stop = true), 25_000);
    let done: JobView;
    try {
      await Promise.all(loops);
      const during = await api<JobView>(cluster.url, 'GET', `/v1/jobs/${job.id}`);
      assert.ok(during.step > 0, 'the job trained during the flood');
      done = await waitForState(cluster.url, job.id, ['completed', 'failed'], 150000);
    } finally {
      stop = true;
      clearTimeout(deadline);
      client.close();
    }
    const total = [...answered.values()].reduce((a, b) => a + b, 0);
    console.log(`      flood answered: ${JSON.stringify(Object.fromEntries(answered))} (-2: data-plane connections closed)`);
    assert.ok(total > 500, `the flood ran: ${JSON.stringify(Object.fromEntries(answered))}`);
    assert.equal(answered.get('-1') ?? 0, 0, 'no stranger received a chunk');
    assert.equal(done.state, 'completed', done.error);
    assert.deepEqual(done.faults, [], 'zero faults');
  });
});
