import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { WorkerInfo } from '@facenet/protocol';
import { api, JobView, startCluster, TestCluster, waitForState } from '../cluster-helpers';
import { CLI, freePort, ORL, tempDir } from '../helpers';
import { startNginx, StaticServer } from '../nginx-helper';
import { needTools } from '../requirements';

/** Sum of one counter over the workers' /metrics. */
async function workerCounter(cluster: TestCluster, name: string): Promise<number> {
  let sum = 0;
  for (const w of await api<WorkerInfo[]>(cluster.url, 'GET', '/v1/workers')) {
    const text = await (await fetch(`http://${w.metrics}/metrics`)).text();
    sum += Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  }
  return sum;
}

const job = (url: string, imageSize: number) => ({
  dataset: { kind: 'shards', url },
  worldSize: 2,
  holdout: 8,
  train: { model: { architecture: 'tiny', imageSize }, batch: { P: 4, K: 3 }, virtualShards: 2, steps: 6, checkpointEvery: 6 },
});

/**
 * A dataset that lives in object storage, not on a volume every pod mounts: ORL packed as tar
 * shards (facenet data pack), served by Debian's nginx (range requests) and by s3rver (an S3 API
 * server on npm: signed requests checked, byte ranges; what it leaves out is in the README).
 */
describe('datasets in object storage: shards over HTTP (nginx) and S3 (s3rver)', function () {
  this.timeout(300_000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;
  let nginx: StaticServer;
  let s3: S3rver;
  let httpBase: string;

  before(async function () {
    needTools(this, 'nginx');
    t = tempDir('facenet-objects-');
    const www = join(t.dir, 'www');
    execFileSync(process.execPath, [CLI, 'data', 'pack', ORL, join(www, 'orl'), '--shard-mb', '1']);
    nginx = await startNginx(www, join(t.dir, 'nginx'));
    httpBase = nginx.url;
    // S3: a bucket on s3rver, filled through the AWS SDK as a user would.
    const s3port = await freePort();
    s3 = new S3rver({
      port: s3port,
      address: '127.0.0.1',
      silent: true,
      directory: join(t.dir, 's3'),
      configureBuckets: [{ name: 'faces', configs: [] }],
    });
    await s3.run();
    const endpoint = `http://127.0.0.1:${s3port}`;
    const client = new S3Client({
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    for (const f of readdirSync(join(www, 'orl')))
      await client.send(new PutObjectCommand({ Bucket: 'faces', Key: `sets/orl/${f}`, Body: readFileSync(join(www, 'orl', f)) }));
    client.destroy();
    cluster = await startCluster(2, join(t.dir, 'ckpt'), {
      FACENET_DATA_URLS: `${httpBase},s3://faces/sets/`,
      FACENET_S3_ENDPOINT: endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
    });
  });
  after(async () => {
    await cluster?.stop();
    nginx?.stop();
    await s3?.close();
    t?.cleanup();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(cluster?.logs.slice(-40).join('\n'));
  });

  it('trains at W=2 from shards over HTTP, evaluator included; a second job reads what the first fetched from the workers’ disk caches', async () => {
    const first = await api<JobView>(cluster.url, 'POST', '/v1/jobs', job(`${httpBase}orl`, 24));
    assert.equal((await waitForState(cluster.url, first.id, ['completed', 'failed'], 180_000)).state, 'completed');
    const fetched = await workerCounter(cluster, 'facenet_worker_data_fetched_bytes_total');
    const misses = await workerCounter(cluster, 'facenet_worker_data_cache_misses_total');
    assert.ok(fetched > 0 && misses > 0, `fetched ${fetched} bytes in ${misses} misses`);
    const requests = nginx.requests();
    // Another size misses the in-memory decoded images, not the bytes on disk.
    const second = await api<JobView>(cluster.url, 'POST', '/v1/jobs', { ...job(`${httpBase}orl`, 28), holdout: 8 });
    assert.equal((await waitForState(cluster.url, second.id, ['completed', 'failed'], 180_000)).state, 'completed');
    const hits = await workerCounter(cluster, 'facenet_worker_data_cache_hits_total');
    console.log(
      `      first job: ${misses} fetches, ${(fetched / 1e6).toFixed(2)} MB; second job: ${hits} cache hits, ${nginx.requests() - requests} more requests to nginx`,
    );
    assert.ok(hits > 0, 'the second job read cached bytes');
  });

  it('trains at W=2 from shards in an S3 bucket', async () => {
    const j = await api<JobView>(cluster.url, 'POST', '/v1/jobs', { ...job('s3://faces/sets/orl', 24), holdout: 0 });
    const done = await waitForState(cluster.url, j.id, ['completed', 'failed'], 180_000);
    assert.equal(done.state, 'completed', JSON.stringify(done));
  });

  it('refuses a location with no index, naming the object, and one outside FACENET_DATA_URLS', async () => {
    const post = (url: string) =>
      fetch(`${cluster.url}/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(job(url, 24)),
      }).then(async (r) => ({ status: r.status, body: await r.text() }));
    const noIndex = await post(`${httpBase}nothing-here`);
    assert.equal(noIndex.status, 400);
    assert.match(noIndex.body, /nothing-here\/index\.jsonl: no such object \(HTTP 404\)/);
    const s3Missing = await post('s3://faces/sets/absent');
    assert.equal(s3Missing.status, 400);
    assert.match(s3Missing.body, /s3:\/\/faces\/sets\/absent\/index\.jsonl: no such object/);
    const outside = await post('https://example.com/faces');
    assert.equal(outside.status, 400);
    assert.match(outside.body, /not inside the data roots this cluster serves/);
  });
});
