import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { Redis } from 'ioredis';
import { DatasetError } from '@facenet/core';
import { redisKeys } from '../redis-keys';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** A job's stored identity index: its content hash (the Redis key's tail) and size. */
export interface DatasetIndexRef {
  /** sha256 of the packed index: jobs on the same data share one stored copy. */
  id: string;
  identities: number;
  images: number;
  /** Bytes of the packed index (before the gzip it is stored with). */
  bytes: number;
}

/**
 * Packed identity indexes in Redis, by content hash, gzipped (a million LFW-style keys: ~40 MB
 * packed, a few MB stored). Written once at admission; the coordinator, each worker, the miner and
 * the evaluator read it when a job starts instead of rescanning the data. The gzip work runs on
 * libuv's thread pool, not on the event loop.
 */
export class DatasetIndexStore {
  private readonly keys;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = redisKeys(prefix);
  }

  async put(id: string, packed: Uint8Array): Promise<void> {
    const key = this.keys.datasetIndex(id);
    if (await this.redis.exists(key)) return;
    await this.redis.set(key, await gzipAsync(packed, { level: 6 }));
  }

  async get(id: string): Promise<Buffer> {
    const stored = await this.redis.getBuffer(this.keys.datasetIndex(id));
    if (!stored)
      throw new DatasetError(
        `the job's dataset index ${id.slice(0, 12)} is not in Redis (deleted?); submit the job again to re-index its data`,
      );
    return gunzipAsync(stored);
  }
}
