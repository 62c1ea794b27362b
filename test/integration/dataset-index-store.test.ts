import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import { PackedIndexBuilder, unpackIndex } from '@facenet/core';
import { redisKeys } from '@facenet/protocol';
import { compressIndex, DatasetIndexStore, deleteKeysUnder } from '@facenet/service-kit';

const REDIS = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

describe('stored dataset indexes (real Redis)', function () {
  this.timeout(60_000);
  const prefix = `fnidx-${randomBytes(4).toString('hex')}`;
  const redis = new IORedis(REDIS);
  after(async () => {
    await deleteKeysUnder(REDIS, prefix);
    redis.disconnect();
  });

  it('round-trips an index stored in several pieces, shares it between jobs, deletes it with its last job, and names one that is missing', async () => {
    // Random keys do not compress: ~10 MB packed, several 4 MB pieces stored.
    const b = new PackedIndexBuilder();
    for (let i = 0; i < 300_000; i++) b.add(`id${i % 5000}`, `${randomBytes(16).toString('hex')}.jpg`);
    const packed = b.finish();
    const store = new DatasetIndexStore(redis, prefix);
    await store.put('abc', compressIndex(packed), 'job-a');
    const key = redisKeys(prefix).datasetIndex('abc');
    assert.ok((await redis.llen(key)) >= 2, 'stored in pieces');
    assert.equal(await redis.ttl(key), -1, 'kept without expiry once complete');
    const back = await store.get('abc');
    assert.ok(back.equals(packed));
    assert.deepEqual([...unpackIndex(back).images[7]!], [...unpackIndex(packed).images[7]!]);
    await store.put('abc', compressIndex(packed), 'job-b'); // a second job on the same data joins it
    const users = redisKeys(prefix).datasetIndexUsers('abc');
    assert.deepEqual((await redis.keys(`${key}*`)).sort(), [key, users].sort(), 'no partial piece list left behind');
    assert.equal(await store.release('abc', 'job-a'), false);
    assert.ok((await store.get('abc')).equals(packed), 'kept while job-b uses it');
    assert.equal(await store.release('abc', 'job-b'), true);
    assert.deepEqual(await redis.keys(`${key}*`), []);
    await assert.rejects(store.get('nope'), /dataset index nope is not in Redis/);
  });
});
