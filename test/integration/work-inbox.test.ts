import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import { StorageError } from '@facenet/core';
import { redisKeys } from '@facenet/protocol';
import { deleteKeysUnder, inboxDepth, INBOX_GROUP, InboxItem, WorkDispatch, WorkInbox } from '@facenet/service-kit';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('work inboxes: items to a worker, answers on one stream (real Redis)', function () {
  this.timeout(30_000);
  const prefix = `fninbox-${randomBytes(4).toString('hex')}`;
  const keys = redisKeys(prefix);
  const redis = new IORedis(REDIS, { maxRetriesPerRequest: null });
  const open: { close: () => Promise<unknown> }[] = [];
  const lines: string[] = [];
  const log = (l: string) => lines.push(l);

  /** A worker's inbox whose handler records what it ran, one at a time. */
  function worker(id: string, handle: (item: InboxItem) => Promise<unknown>) {
    const ran: string[] = [];
    let running = 0;
    let overlapped = false;
    const inbox = new WorkInbox(
      redis,
      { inbox: keys.workerInbox(id), results: keys.workResults },
      id,
      async (item) => {
        overlapped ||= running > 0;
        running++;
        ran.push(item.id);
        try {
          return await handle(item);
        } finally {
          running--;
        }
      },
      log,
    );
    open.push({ close: () => inbox.close(1000) });
    return { inbox, ran, overlapped: () => overlapped };
  }

  function dispatcher() {
    const d = new WorkDispatch(redis, keys.workResults, log);
    open.push(d);
    return d;
  }

  afterEach(async () => {
    for (const o of open.splice(0)) await o.close();
  });
  after(async () => {
    await deleteKeysUnder(REDIS, prefix);
    redis.disconnect();
  });

  it('runs items one at a time in order and answers each; a failure arrives as the worker’s own error class', async () => {
    const w = worker('a', async (item) => {
      const d = item.data as { n: number; fail?: boolean };
      await sleep(20);
      if (d.fail) throw new StorageError('/ckpt/x', 'ENOSPC', 'no space left on device');
      return { doubled: d.n * 2 };
    });
    await w.inbox.start();
    const d = dispatcher();
    const ids = ['i0', 'i1', 'i2', 'i3'];
    for (const [n, id] of ids.entries()) await d.send(keys.workerInbox('a'), id, { n, fail: n === 2 });
    const answers = await Promise.allSettled(ids.map((id) => d.answer(id, 10_000)));
    assert.deepEqual(answers[0], { status: 'fulfilled', value: { doubled: 0 } });
    assert.deepEqual(answers[3], { status: 'fulfilled', value: { doubled: 6 } });
    const failed = answers[2] as PromiseRejectedResult;
    assert.equal(failed.status, 'rejected');
    assert.ok(failed.reason instanceof StorageError, `a StorageError, got ${failed.reason}`);
    assert.equal((failed.reason as StorageError).code, 'ENOSPC');
    assert.deepEqual(w.ran, ids, 'in the order sent');
    assert.equal(w.overlapped(), false, 'never two at once');
    assert.deepEqual(await inboxDepth(redis, keys.workerInbox('a')), { waiting: 0, active: 0 });
  });

  it('an item sent again (a restarted coordinator) is answered again without a second run', async () => {
    const w = worker('b', async (item) => ({ ran: item.id }));
    await w.inbox.start();
    const first = dispatcher();
    await first.send(keys.workerInbox('b'), 'job-s3-r0-g1', { step: 3 });
    assert.deepEqual(await first.answer('job-s3-r0-g1', 10_000), { ran: 'job-s3-r0-g1' });
    await first.close();
    const second = dispatcher(); // the next coordinator, which never saw the answer
    await second.send(keys.workerInbox('b'), 'job-s3-r0-g1', { step: 3 });
    assert.deepEqual(await second.answer('job-s3-r0-g1', 10_000), { ran: 'job-s3-r0-g1' });
    assert.deepEqual(w.ran, ['job-s3-r0-g1'], 'run once');
  });

  it('an item a dead process took is answered as failed by the next process of the same worker, and not run', async () => {
    const d = dispatcher();
    await redis.call('XGROUP', 'CREATE', keys.workerInbox('c'), INBOX_GROUP, '0', 'MKSTREAM');
    await d.send(keys.workerInbox('c'), 'taken', { step: 0 });
    // The process that took it dies before answering: the entry stays in its consumer's pending list.
    await redis.xreadgroup('GROUP', INBOX_GROUP, 'c', 'COUNT', 1, 'STREAMS', keys.workerInbox('c'), '>');
    assert.deepEqual(await inboxDepth(redis, keys.workerInbox('c')), { waiting: 0, active: 1 });
    const w = worker('c', async () => 'ran');
    await w.inbox.start();
    await assert.rejects(d.answer('taken', 10_000), /the worker restarted while running taken/);
    assert.deepEqual(w.ran, []);
    await d.send(keys.workerInbox('c'), 'next', {});
    assert.equal(await d.answer('next', 10_000), 'ran', 'and it serves what comes next');
  });

  it('an inbox the coordinator removed (a worker taken for lost) is made again, and the next item is served', async () => {
    const w = worker('e', async (item) => item.id);
    await w.inbox.start();
    const d = dispatcher();
    await redis.del(keys.workerInbox('e'));
    await sleep(1200); // the worker's blocking read fails with NOGROUP and makes the group anew
    await d.send(keys.workerInbox('e'), 'after', {});
    assert.equal(await d.answer('after', 10_000), 'after');
  });

  it('items sent before the worker first reads are not lost; a wait times out naming the worker; closing ends waits at once', async () => {
    const d = dispatcher();
    await d.send(keys.workerInbox('f'), 'early', {});
    await assert.rejects(
      d.answer('early', 300, () => 'f for early'),
      /no result from f for early after 300 ms/,
    );
    await d.send(keys.workerInbox('f'), 'early2', {});
    const w = worker('f', async (item) => item.id);
    await w.inbox.start();
    assert.equal(await d.answer('early2', 10_000), 'early2');
    assert.deepEqual(w.ran, ['early', 'early2'], 'the first was run although nobody waited any more');
    await d.send(keys.workerInbox('nobody'), 'never', {});
    const waiting = assert.rejects(d.answer('never', 60_000), /the coordinator is stopping/);
    const t0 = Date.now();
    await d.close();
    await waiting;
    assert.ok(Date.now() - t0 < 2000);
  });

  it('a malformed answer fails its wait, naming it, and the reader goes on', async () => {
    const d = dispatcher();
    await d.send(keys.workerInbox('h'), 'bad', {});
    await d.send(keys.workerInbox('h'), 'good', {});
    await redis.xadd(keys.workResults, '*', 'id', 'bad', 'from', 'h', 'ok', '{not json');
    await redis.xadd(keys.workResults, '*', 'id', 'good', 'from', 'h', 'ok', '"fine"');
    await assert.rejects(d.answer('bad', 5000), /the answer to bad is not JSON: \{not json/);
    assert.equal(await d.answer('good', 5000), 'fine');
  });

  it('a worker closing lets the item running finish and answer, and takes nothing more', async () => {
    let release!: () => void;
    const w = worker('g', (item) => (item.id === 'long' ? new Promise((r) => (release = () => r('long done'))) : Promise.resolve(item.id)));
    await w.inbox.start();
    const d = dispatcher();
    await d.send(keys.workerInbox('g'), 'long', {});
    await sleep(200);
    const closed = w.inbox.close(5000);
    await d.send(keys.workerInbox('g'), 'later', {});
    await sleep(100);
    release();
    await closed;
    assert.equal(await d.answer('long', 5000), 'long done');
    assert.deepEqual(w.ran, ['long']);
    assert.deepEqual(await inboxDepth(redis, keys.workerInbox('g')), { waiting: 1, active: 0 }, 'the later item left waiting');
  });
});
