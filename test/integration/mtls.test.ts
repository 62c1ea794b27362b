import { ringPlace } from '@facenet/protocol';
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { AllreducePeer, encodeHello, facenetProto, SECRET_METADATA } from '@facenet/worker';
import { api, JobView, startCluster, waitForState } from '../cluster-helpers';
import { ORL, tempDir } from '../helpers';
import { needTools } from '../requirements';

/** A CA and a certificate it signs for 127.0.0.1 (server and client use), made with Debian's openssl. */
function makeCa(dir: string, name: string): { ca: string; cert: string; key: string } {
  const p = (f: string) => join(dir, `${name}-${f}`);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    p('ca.key'),
    '-out',
    p('ca.pem'),
    '-days',
    '2',
    '-subj',
    `/CN=${name} CA`,
  );
  ssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    p('worker.key'),
    '-out',
    p('worker.csr'),
    '-subj',
    `/CN=${name} worker`,
  );
  writeFileSync(p('ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  ssl(
    'x509',
    '-req',
    '-in',
    p('worker.csr'),
    '-CA',
    p('ca.pem'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-out',
    p('worker.pem'),
    '-days',
    '2',
    '-extfile',
    p('ext'),
  );
  return { ca: p('ca.pem'), cert: p('worker.pem'), key: p('worker.key') };
}

describe('mutual TLS between workers (certificates made by openssl)', function () {
  this.timeout(180000);
  let t: ReturnType<typeof tempDir>;
  let tls: { ca: string; cert: string; key: string };
  let rogue: { ca: string; cert: string; key: string };
  before(function () {
    needTools(this, 'openssl');
    t = tempDir('facenet-mtls-');
    tls = makeCa(t.dir, 'facenet');
    rogue = makeCa(t.dir, 'rogue');
  });
  after(() => t?.cleanup());

  it("ranks with certificates of the cluster CA reduce; a client without one, or with a foreign CA's, gets no data", async () => {
    const peers = Array.from({ length: 3 }, () => new AllreducePeer({ tls, timeoutMs: 10000 }));
    await Promise.all(peers.map((p) => p.start()));
    const world = peers.map((p) => p.address);
    // Every worker once printed DEP0123: the data plane sent the peer's IP address as TLS SNI.
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(`${w.code ?? w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const data = peers.map((_, r) => Float32Array.from({ length: 5000 }, (_, i) => r + i));
      const secret = 's'.repeat(64);
      await Promise.all(peers.map((p, r) => p.allreduce('job/0/1', data[r]!, r, ringPlace(world, r), secret)));
      for (const d of data) assert.equal(d[10], 0 + 1 + 2 + 3 * 10);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      assert.deepEqual(
        warnings.filter((w) => /DEP0123|ServerName/.test(w)),
        [],
        'no TLS warning for an IP address',
      );
      process.off('warning', onWarning);

      const Ctor = facenetProto().facenet.v1.AllreduceService;
      const attempt = async (creds: grpc.ChannelCredentials) => {
        const client = new Ctor(world[1]!, creds);
        const md = new grpc.Metadata();
        md.set(SECRET_METADATA, secret);
        const outcome = await new Promise<{ code?: number; chunks: number }>((resolve) => {
          let chunks = 0;
          const s = client.Pull({ collective_id: 'job/1/1', to_rank: 2 }, md);
          s.on('data', () => chunks++);
          s.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, chunks }));
          s.on('end', () => resolve({ chunks }));
        });
        client.close();
        return outcome;
      };
      const plaintext = await attempt(grpc.credentials.createInsecure());
      assert.equal(plaintext.code, grpc.status.UNAVAILABLE, 'a plaintext client cannot even connect');
      assert.equal(plaintext.chunks, 0);
      const noCert = await attempt(grpc.credentials.createSsl(readFileSync(tls.ca)));
      assert.equal(noCert.code, grpc.status.UNAVAILABLE, 'TLS without a client certificate is refused');
      const foreign = await attempt(grpc.credentials.createSsl(readFileSync(tls.ca), readFileSync(rogue.key), readFileSync(rogue.cert)));
      assert.equal(foreign.code, grpc.status.UNAVAILABLE, 'a certificate from another CA is refused');
      assert.equal(noCert.chunks + foreign.chunks, 0);

      // The TCP data plane takes the same certificates: without one, no data either.
      const port = await new Promise<number>((resolve, reject) => {
        const client = new Ctor(world[1]!, grpc.credentials.createSsl(readFileSync(tls.ca), readFileSync(tls.key), readFileSync(tls.cert)));
        client.DataEndpoint({}, (err, res) => {
          client.close();
          return err ? reject(err) : resolve(res?.port ?? 0);
        });
      });
      assert.ok(port > 0, 'the rank announces a data plane');
      const dataPlaneAttempt = (secure: boolean) =>
        new Promise<{ bytes: number; error?: string }>((resolve) => {
          let bytes = 0;
          let error: string | undefined;
          const hello = encodeHello({ collective_id: 'job/2/1', to_rank: 2, secret });
          const sock = secure
            ? tlsConnect(
                { host: '127.0.0.1', port, ca: readFileSync(tls.ca), cert: readFileSync(rogue.cert), key: readFileSync(rogue.key) },
                () => sock.write(hello),
              )
            : netConnect(port, '127.0.0.1', () => sock.write(hello));
          sock.on('data', (b: Buffer) => (bytes += b.length));
          sock.on('error', (e) => (error = e.message));
          sock.on('close', () => resolve({ bytes, error }));
        });
      const plainData = await dataPlaneAttempt(false);
      assert.equal(plainData.bytes, 0, 'a plaintext connection to the TLS data plane gets nothing back');
      const foreignData = await dataPlaneAttempt(true);
      // (With TLS 1.3 the client may finish its side of the handshake before the server refuses the certificate and closes.)
      assert.equal(foreignData.bytes, 0, 'a foreign certificate gets nothing back');
    } finally {
      process.off('warning', onWarning);
      await Promise.all(peers.map((p) => p.close()));
    }
  });

  it('facenet up --workers 3 with FACENET_TLS_* trains a W=3 job to the end over mTLS', async () => {
    const env = { FACENET_TLS_CA: tls.ca, FACENET_TLS_CERT: tls.cert, FACENET_TLS_KEY: tls.key };
    const cluster = await startCluster(3, join(t.dir, 'ckpt'), env, ['--no-miner', '--no-evaluator']);
    try {
      const spec = {
        dataset: { kind: 'folder', path: ORL },
        holdout: 10,
        worldSize: 3,
        checksumEvery: 2,
        train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 12, K: 4 }, virtualShards: 3, steps: 6, checkpointEvery: 3 },
      };
      const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec);
      const end = await waitForState(cluster.url, job.id, ['completed'], 120000);
      assert.equal(end.step, 6);
      assert.deepEqual(end.faults, []);
      assert.equal(
        cluster.logs.filter((l) => /allreduce at .* \(mutual TLS\)/.test(l)).length,
        3,
        'every worker serves its ring over mTLS',
      );
    } finally {
      await cluster.stop();
    }
  });
});
