import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { DiskCache, processCache } from './disk-cache';
import { HttpStore } from './http-store';
import { LocalStore } from './local-store';
import type { ObjectStore } from './object-store';
import { S3Store } from './s3-store';

/** True for a location read over the network (http, https, s3) rather than from a mounted folder. */
export function isRemote(location: string): boolean {
  return /^(https?|s3):\/\//i.test(location);
}

/** Reads of a remote store through a disk cache; whole-object streams (an index) pass through. */
export class CachedStore implements ObjectStore {
  constructor(
    private readonly inner: ObjectStore,
    private readonly cache: DiskCache,
  ) {}

  get base(): string {
    return this.inner.base;
  }

  read(name: string, offset: number, length: number): Promise<Buffer> {
    const key = createHash('sha256').update(`${this.inner.base}\0${name}\0${offset}\0${length}`).digest('hex');
    return this.cache.get(key, () => this.inner.read(name, offset, length));
  }

  open(name: string): Promise<Readable> {
    return this.inner.open(name);
  }
}

/** The store for a dataset location: a path or file:// URL, http(s)://, or s3://; remote ones cached on disk. */
export function objectStoreFor(location: string, cache: DiskCache | null = processCache()): ObjectStore {
  const store = /^https?:\/\//i.test(location)
    ? new HttpStore(location)
    : /^s3:\/\//i.test(location)
      ? new S3Store(location)
      : new LocalStore(location.startsWith('file://') ? fileURLToPath(location) : location);
  return cache && isRemote(location) ? new CachedStore(store, cache) : store;
}
