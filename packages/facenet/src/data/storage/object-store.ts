import type { Readable } from 'node:stream';
import { DatasetError } from '../../errors';

/**
 * Where a dataset's files live: a folder, an HTTP(S) server, an S3 bucket. Names are relative to
 * the store's base (`shard-00000.tar`, `index.jsonl`). Errors are DatasetErrors naming the object.
 */
export interface ObjectStore {
  /** The base, for messages and cache keys (credentials never appear in it). */
  readonly base: string;
  /** Bytes [offset, offset + length) of an object. */
  read(name: string, offset: number, length: number): Promise<Buffer>;
  /** The whole object as a stream (an index of millions of lines is never held whole). */
  open(name: string): Promise<Readable>;
}

/** The most one read may ask for: a face image is kilobytes; Node's file read aborts the process at 2 GiB. */
export const MAX_READ_BYTES = 256 * 2 ** 20;

/** Refuses a byte range no caller of a dataset needs, before anything is allocated or read. */
export function checkRange(what: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0)
    throw new DatasetError(`${what}: bad byte range (offset ${offset}, length ${length})`);
  if (length > MAX_READ_BYTES) throw new DatasetError(`${what}: a read of ${length} bytes; one read may be at most ${MAX_READ_BYTES}`);
}
