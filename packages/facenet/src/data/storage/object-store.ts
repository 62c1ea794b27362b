import type { Readable } from 'node:stream';

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
