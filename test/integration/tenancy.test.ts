import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Coordinator, parseQueues } from '@facenet/coordinator';
import { deleteKeysUnder } from '@facenet/service-kit';
import { CLI, ORL, tempDir } from '../helpers';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const TOKENS = {
  admin: 'admin-token-0123456789abcdef',
  read: 'read-token-0123456789abcdef',
  a: 'team-a-token-0123456789abcdef',
  b: 'team-b-token-0123456789abcdef',
};
const spec = (queue: string) => ({
  queue,
  dataset: { kind: 'folder', path: ORL },
  holdout: 10,
  train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 4, K: 2 }, steps: 2 },
});

describe('tenancy: a team token sees and steers its own queues’ jobs only', function () {
  this.timeout(60_000);
  let t: ReturnType<typeof tempDir>;
  let c: Coordinator;
  const prefix = `fnten-${randomBytes(4).toString('hex')}`;

  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${c.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(method === 'GET' ? {} : { 'content-type': 'application/json' }) },
      body: method === 'GET' ? undefined : JSON.stringify(body ?? {}),
    });
    return { status: res.status, body: (await res.json().catch(() => null)) as Record<string, unknown> & { id?: string } };
  };

  before(async () => {
    t = tempDir('facenet-tenancy-');
    const file = join(t.dir, 'tokens');
    writeFileSync(file, `admin:${TOKENS.admin}\nread:${TOKENS.read}\nteam:team-a:${TOKENS.a}\nteam:team-b:${TOKENS.b}\n`);
    // No workers: jobs stay pending, which is all these checks need.
    c = new Coordinator(
      {
        redisUrl: REDIS,
        port: 0,
        prefix,
        checkpointRoot: join(t.dir, 'ckpt'),
        apiTokensFile: file,
        queues: parseQueues('team-a=2:1,team-b=2:1'),
      },
      () => undefined,
    );
    await c.start();
  });
  after(async () => {
    await c?.close();
    await deleteKeysUnder(REDIS, prefix);
    t?.cleanup();
  });

  it('submits to its own queues; another queue is 403 naming the field; a read token submits nothing', async () => {
    assert.equal((await call('POST', '/v1/jobs', TOKENS.a, spec('team-a'))).status, 201);
    const other = await call('POST', '/v1/jobs', TOKENS.a, spec('team-b'));
    assert.equal(other.status, 403);
    assert.match(JSON.stringify(other.body), /queue: this token submits to team-a only, not \\"team-b\\"/);
    assert.equal(
      (await call('POST', '/v1/jobs', TOKENS.a, { ...spec('team-a'), queue: undefined })).status,
      403,
      'the default queue is not team-a’s',
    );
    assert.equal((await call('POST', '/v1/jobs', TOKENS.read, spec('team-a'))).status, 403);
  });

  it('cannot see, pause, cancel, fork, export or read the history of another team’s job (404, as if absent); admin and read see every job', async () => {
    const mine = (await call('POST', '/v1/jobs', TOKENS.a, spec('team-a'))).body.id as string;
    const theirs = (await call('POST', '/v1/jobs', TOKENS.b, spec('team-b'))).body.id as string;
    const listed = async (token: string) =>
      ((await call('GET', '/v1/jobs?limit=500', token)).body as unknown as { id: string }[]).map((j) => j.id);
    assert.ok((await listed(TOKENS.a)).includes(mine));
    assert.ok(!(await listed(TOKENS.a)).includes(theirs), 'team-a’s list holds no team-b job');
    for (const token of [TOKENS.admin, TOKENS.read]) {
      const all = await listed(token);
      assert.ok(all.includes(mine) && all.includes(theirs));
    }
    const gone = await call('GET', `/v1/jobs/${theirs}`, TOKENS.a);
    const absent = await call('GET', '/v1/jobs/no-such-job', TOKENS.a);
    assert.equal(gone.status, 404);
    assert.equal(absent.status, 404);
    for (const [method, path] of [
      ['GET', `/v1/jobs/${theirs}/history`],
      ['GET', `/v1/jobs/${theirs}/checkpoints`],
      ['GET', `/v1/jobs/${theirs}/evaluations`],
      ['GET', `/v1/jobs/${theirs}/export?format=onnx`],
      ['POST', `/v1/jobs/${theirs}/pause`],
      ['POST', `/v1/jobs/${theirs}/cancel`],
      ['POST', `/v1/jobs/${theirs}/fork`],
    ] as const)
      assert.equal((await call(method, path, TOKENS.a)).status, 404, `${method} ${path}`);
    assert.equal((await call('GET', `/v1/jobs/${theirs}`, TOKENS.b)).body.state, 'pending', 'team-b’s job untouched');
    assert.equal((await call('POST', `/v1/jobs/${mine}/pause`, TOKENS.a)).status, 200, 'its own job it steers');
  });

  it('the CLI lists with a team token what the API shows that team', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'jobs', 'list', '--api', c.url, '--token', TOKENS.b, '--json']);
    const queues = new Set((JSON.parse(stdout) as { queue: string }[]).map((j) => j.queue));
    assert.deepEqual([...queues], ['team-b']);
  });
});
