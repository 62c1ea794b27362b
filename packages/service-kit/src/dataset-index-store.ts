import { randomBytes } from 'node:crypto';
import { createGunzip, gzipSync } from 'node:zlib';
import type { Redis } from 'ioredis';
import { DatasetError } from '@facenet/core';
import { redisKeys } from '@facenet/protocol';
import type { StoredIndexes } from '@facenet/protocol';

/**
 * The stored form of a packed index: gzip (a million VGGFace2-style keys: 24 MB packed, 5.5 MB
 * stored). Synchronous: called in the admission thread, never on an event loop.
 */
export function compressIndex(packed: Uint8Array): Uint8Array {
  const gz = gzipSync(packed, { level: 6 });
  // A small result may be a slice of Node's shared buffer pool: copy it out so it can be transferred.
  return gz.byteOffset === 0 && gz.byteLength === gz.buffer.byteLength ? gz : new Uint8Array(gz);
}

/** Redis holds a stored index as a list of pieces this size: one 55 MB SET held ioredis's event loop 161 ms (measured). */
const PIECE_BYTES = 4 << 20;

/**
 * Inflates a stored index, read piece by piece, into one buffer of its final size (`size`, from
 * gzip's trailer): no step copies the whole index at once on the event loop (a 240 MB
 * Buffer.concat would hold it ~100 ms). The inflating runs on libuv's pool.
 */
async function inflate(pieces: AsyncIterable<Buffer>, size: number): Promise<Buffer> {
  const out = Buffer.alloc(size);
  let at = 0;
  const z = createGunzip({ chunkSize: 1 << 20 });
  const done = new Promise<void>((resolve, reject) => {
    z.on('data', (chunk: Buffer) => {
      if (at + chunk.length > out.length) return z.destroy(new DatasetError('a stored dataset index larger than its gzip trailer says'));
      at += chunk.copy(out, at);
    });
    z.on('error', (err) => reject(err instanceof DatasetError ? err : new DatasetError(`a corrupt stored dataset index: ${err.message}`)));
    z.on('end', () =>
      at === out.length ? resolve() : reject(new DatasetError('a stored dataset index shorter than its gzip trailer says')),
    );
  });
  for await (const piece of pieces) if (!z.write(piece)) await new Promise((r) => z.once('drain', r));
  z.end();
  await done;
  return out;
}

const JOIN_IF_STORED = `if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('SADD', KEYS[2], ARGV[1]) return 1 end return 0`;
const RELEASE = `redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('SCARD', KEYS[2]) == 0 then redis.call('DEL', KEYS[1], KEYS[2]) return 1 end return 0`;

/**
 * Packed identity indexes in Redis, by content hash, gzipped (compressIndex). Written once at
 * admission; the coordinator, each worker, the miner and the evaluator read it when a job starts
 * instead of rescanning the data.
 */
export class DatasetIndexStore implements StoredIndexes {
  private readonly keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  /**
   * Stores the index for job `jobId` (`stored`: compressIndex(packed), made where the index was
   * built). A job on data already stored only joins its users. Otherwise the pieces are written
   * under a temporary key (expiring, should the writer die) and renamed with the user added in
   * one transaction: a reader sees all of the index or none.
   */
  async put(id: string, stored: Uint8Array, jobId: string): Promise<void> {
    const key = this.keys.datasetIndex(id);
    const users = this.keys.datasetIndexUsers(id);
    // Joining and releasing are scripts, so a release can never delete an index a job just joined.
    if ((await this.redis.eval(JOIN_IF_STORED, 2, key, users, jobId)) === 1) return;
    const partial = `${key}:partial:${randomBytes(4).toString('hex')}`;
    for (let at = 0; at < stored.byteLength; at += PIECE_BYTES) {
      const piece = Buffer.from(stored.buffer, stored.byteOffset + at, Math.min(PIECE_BYTES, stored.byteLength - at));
      await this.redis.multi().rpush(partial, piece).expire(partial, 3600).exec();
    }
    await this.redis.multi().rename(partial, key).persist(key).sadd(users, jobId).exec();
  }

  /** Job `jobId` no longer needs the index (it was removed); the last user's release deletes it. Returns whether it did. */
  async release(id: string, jobId: string): Promise<boolean> {
    return (await this.redis.eval(RELEASE, 2, this.keys.datasetIndex(id), this.keys.datasetIndexUsers(id), jobId)) === 1;
  }

  async get(id: string): Promise<Buffer> {
    const key = this.keys.datasetIndex(id);
    const last = await this.redis.lindexBuffer(key, -1);
    if (!last || last.length < 4)
      throw new DatasetError(
        `the job's dataset index ${id.slice(0, 12)} is not in Redis (deleted?); submit the job again to re-index its data`,
      );
    const pieces = await this.redis.llen(key);
    const redis = this.redis;
    async function* read(): AsyncGenerator<Buffer> {
      for (let i = 0; i < pieces; i++) {
        const piece = await redis.lindexBuffer(key, i);
        if (!piece) throw new DatasetError(`the dataset index ${id.slice(0, 12)} changed while it was read`);
        yield piece;
      }
    }
    return inflate(read(), last.readUInt32LE(last.length - 4));
  }
}
