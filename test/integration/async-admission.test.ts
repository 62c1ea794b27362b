import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { Coordinator } from '@facenet/coordinator';
import type { JobView } from '@facenet/protocol';
import { deleteKeysUnder } from '@facenet/service-kit';
import { tempDir } from '../helpers';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A JSON Lines manifest of `identities` x `per` images (the files need not exist to be admitted). */
async function writeManifest(file: string, identities: number, per: number): Promise<void> {
  const out = createWriteStream(file);
  for (let i = 0; i < identities; i++) {
    let chunk = '';
    for (let k = 0; k < per; k++) chunk += `{"path":"p${i}/${k}.jpg","identity":"p${i}"}\n`;
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/**
 * POST /v1/jobs with a dataset that takes longer to index than the coordinator waits: 202 with
 * the job `admitting`, progress in its view, then `pending` with its index, or `failed` naming
 * the field; a cancel during admission holds; a coordinator restarted mid-admission resumes it.
 */
describe('admission in the background: 202 admitting, then pending or failed', function () {
  this.timeout(180_000);
  let t: ReturnType<typeof tempDir>;
  let c: Coordinator | undefined;
  let logs: string[] = [];
  const prefix = `fnadm-${randomBytes(4).toString('hex')}`;
  let big: string;
  let singles: string;

  const start = async () => {
    c = new Coordinator(
      {
        redisUrl: REDIS,
        port: 0,
        prefix,
        checkpointRoot: join(t.dir, 'ckpt'),
        dataRoots: [join(t.dir, 'data')],
        admissionAnswerMs: 0, // every dataset that must be read answers 202
      },
      (l) => logs.push(l),
    );
    await c.start();
  };
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${c!.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as JobView & { error?: string } };
  };
  const spec = (path: string) => ({
    dataset: { kind: 'manifest', path },
    holdout: 2,
    train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 4, K: 2 }, steps: 2 },
  });
  const until = async (id: string, done: (j: JobView) => boolean, seen: JobView[] = []): Promise<JobView> => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const j = (await call('GET', `/v1/jobs/${id}`)).body;
      seen.push(j);
      if (done(j)) return j;
      if (Date.now() > deadline) throw new Error(`job ${id} stayed ${j.state}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  before(async () => {
    t = tempDir('facenet-admission-');
    mkdirSync(join(t.dir, 'data'));
    big = join(t.dir, 'data', 'big.jsonl');
    singles = join(t.dir, 'data', 'singles.jsonl');
    await writeManifest(big, 300_000, 4); // 1.2M rows: seconds of indexing on 2 cores
    await writeManifest(singles, 1000, 1); // nobody has two images: holdout leaves nothing to train
    await start();
  });
  after(async () => {
    await c?.close();
    await deleteKeysUnder(REDIS, prefix);
    t?.cleanup();
  });

  it('answers 202 with the job admitting, shows the images indexed so far, then moves it to pending with its index', async () => {
    const r = await call('POST', '/v1/jobs', spec(big));
    assert.equal(r.status, 202);
    assert.equal(r.body.state, 'admitting');
    assert.equal(r.body.admission?.images, 0);
    const seen: JobView[] = [];
    const j = await until(r.body.id, (v) => v.state !== 'admitting', seen);
    assert.equal(j.state, 'pending', j.error);
    assert.equal(j.dataIndex?.images, 1_200_000);
    assert.equal(j.admission, null);
    assert.ok(
      seen.some((v) => v.state === 'admitting' && (v.admission?.images ?? 0) > 0),
      'no view showed progress while admitting',
    );
  });

  it('a dataset refused after the 202 fails the job with the reason, naming the field', async () => {
    const r = await call('POST', '/v1/jobs', spec(singles));
    assert.equal(r.status, 202);
    const j = await until(r.body.id, (v) => v.state !== 'admitting');
    assert.equal(j.state, 'failed');
    assert.match(j.error ?? '', /^admission refused: holdout: leaves -?\d+ identities with 2\+ images/);
  });

  it('a job cancelled while admitting stays cancelled when indexing ends', async () => {
    const r = await call('POST', '/v1/jobs', spec(big));
    assert.equal(r.status, 202);
    assert.equal((await call('POST', `/v1/jobs/${r.body.id}/cancel`, {})).body.state, 'cancelled');
    const deadline = Date.now() + 120_000;
    while (!logs.some((l) => l.includes(`job ${r.body.id}: indexing ended after the job was cancelled`)) && Date.now() < deadline)
      await new Promise((res) => setTimeout(res, 200));
    assert.ok(Date.now() < deadline, 'indexing never ended');
    assert.equal((await call('GET', `/v1/jobs/${r.body.id}`)).body.state, 'cancelled');
  });

  it('a coordinator restarted during admission admits the job again', async () => {
    const r = await call('POST', '/v1/jobs', spec(big));
    assert.equal(r.status, 202);
    await c!.close();
    logs = [];
    await start();
    const j = await until(r.body.id, (v) => v.state !== 'admitting');
    assert.equal(j.state, 'pending', j.error);
    assert.ok(logs.some((l) => l.includes(`job ${r.body.id}: admission restarted`)));
  });
});
