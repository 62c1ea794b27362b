/** A job's stored identity index: its content hash (the Redis key's tail) and size. */
export interface DatasetIndexRef {
  /** sha256 of the packed index: jobs on the same data share one stored copy. */
  id: string;
  identities: number;
  images: number;
  /** Bytes of the packed index (before the gzip it is stored with). */
  bytes: number;
}

/** Where a process reads stored indexes from (@facenet/service-kit's DatasetIndexStore, on Redis). */
export interface StoredIndexes {
  /** The packed index with this id, unzipped. */
  get(id: string): Promise<Uint8Array>;
}
