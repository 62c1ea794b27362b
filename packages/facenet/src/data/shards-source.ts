import { createInterface } from 'node:readline';
import { DatasetError, ImageDecodeError } from '../errors';
import { decodeSquareBytes } from './decode-image';
import { DecodedCache } from './decoded-cache';
import { FaceSource, IdentityIndex, imageCount, SquareImage, withoutIdentities } from './face-source';
import { PackedIndexBuilder } from './packed-index';
import type { ObjectStore } from './storage/object-store';

/**
 * A sharded dataset (`facenet data pack`): tar shards in the WebDataset convention (members
 * `<key>.<ext>` and `<key>.json`), each holding whole identities, and `index.jsonl`, one line an
 * image: {identity, shard, offset, size, ext}. Training draws P identities x K images at random,
 * so a worker reads single members by byte range (an identity's images lie side by side); a
 * reader that streams shards in order, as WebDataset does, can still read them as plain tars.
 */
export const SHARD_INDEX = 'index.jsonl';
export const MAX_SHARDS = 100_000;
/**
 * The largest member a shard may list: far above any face image, far below the 2 GiB where
 * Node's file reads abort the process (a member of 2^31 bytes once took down every worker).
 */
export const MAX_MEMBER_BYTES = 64 * 2 ** 20;

export function shardName(n: number): string {
  return `shard-${String(n).padStart(5, '0')}.tar`;
}

/** One image's place, as the packed index keeps it: `<shard>:<offset>:<size>:<ext>`. */
function memberKey(shard: number, offset: number, size: number, ext: string): string {
  return `${shard}:${offset}:${size}:${ext}`;
}

function parseMemberKey(key: string): { shard: number; offset: number; size: number; ext: string } | undefined {
  const m = /^(\d{1,5}):(\d{1,15}):(\d{1,10}):([a-z]{2,4})$/.exec(key);
  if (!m) return undefined;
  const place = { shard: Number(m[1]), offset: Number(m[2]), size: Number(m[3]), ext: m[4] as string };
  return place.shard < MAX_SHARDS && place.size <= MAX_MEMBER_BYTES ? place : undefined;
}

/** Reads a sharded dataset's index.jsonl into a packed index (keys: member places). */
export async function packShardIndex(
  store: ObjectStore,
  o: { maxImages?: number; deadlineMs?: number; onProgress?: (images: number) => void } = {},
): Promise<Buffer> {
  const maxImages = o.maxImages ?? 20_000_000;
  const deadline = o.deadlineMs === undefined ? Infinity : Date.now() + o.deadlineMs;
  const b = new PackedIndexBuilder(o.onProgress);
  let line = 0;
  const where = `${store.base}${SHARD_INDEX}`;
  for await (const text of createInterface({ input: await store.open(SHARD_INDEX), crlfDelay: Infinity })) {
    line++;
    if (!text.trim()) continue;
    let r: { identity?: unknown; shard?: unknown; offset?: unknown; size?: unknown; ext?: unknown } | null;
    try {
      r = JSON.parse(text) as typeof r;
    } catch {
      r = null;
    }
    if (!r || typeof r !== 'object') throw new DatasetError(`${where} line ${line}: not a JSON object`);
    const int = (v: unknown, max: number) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
    if (typeof r.identity !== 'string' || !r.identity) throw new DatasetError(`${where} line ${line}: no identity`);
    if (
      !int(r.shard, MAX_SHARDS - 1) ||
      !int(r.offset, 2 ** 48) ||
      !int(r.size, 2 ** 53) ||
      typeof r.ext !== 'string' ||
      !/^[a-z]{2,4}$/.test(r.ext)
    )
      throw new DatasetError(`${where} line ${line}: needs shard, offset, size (integers) and ext`);
    if ((r.size as number) > MAX_MEMBER_BYTES)
      throw new DatasetError(`${where} line ${line}: size ${r.size as number} bytes; a member may be at most ${MAX_MEMBER_BYTES} bytes`);
    b.add(r.identity, memberKey(r.shard as number, r.offset as number, r.size as number, r.ext));
    if (b.images > maxImages) throw new DatasetError(`${where} lists more than ${maxImages} images; split the dataset`);
    if (line % 65536 === 0 && Date.now() > deadline)
      throw new DatasetError(`reading ${where} took longer than ${(o.deadlineMs as number) / 1000} s (${line} lines read)`);
  }
  if (b.identities === 0) throw new DatasetError(`${where} lists no images`);
  return b.finish();
}

export interface ShardsSourceOptions {
  /** @default 1 */
  cropFraction?: number;
  /** Identities to leave out. @default [] */
  exclude?: string[];
  /** Decoded images kept in memory. @default 20000 */
  cacheSize?: number;
}

/** The images of a sharded dataset, each read by byte range from its shard (through the store's cache). */
export class ShardsSource implements FaceSource {
  readonly index: IdentityIndex;
  readonly description: string;
  readonly cropFraction: number;
  private readonly decoded: DecodedCache;

  constructor(
    private readonly store: ObjectStore,
    index: IdentityIndex,
    o: ShardsSourceOptions = {},
  ) {
    this.index = withoutIdentities(index, o.exclude);
    this.cropFraction = o.cropFraction ?? 1;
    this.decoded = new DecodedCache(o.cacheSize);
    this.description = `shards at ${store.base} (${this.index.names.length} identities, ${imageCount(this.index)} images)`;
  }

  read(key: string, side: number): Promise<SquareImage> {
    return this.decoded.get(key, side, () => this.fetchAndDecode(key, side));
  }

  private async fetchAndDecode(key: string, side: number): Promise<SquareImage> {
    const m = parseMemberKey(key);
    if (!m) throw new ImageDecodeError(key, 'not an image of this dataset');
    const name = `${this.store.base}${shardName(m.shard)}@${m.offset}`;
    let bytes: Buffer;
    try {
      bytes = await this.store.read(shardName(m.shard), m.offset, m.size);
    } catch (err) {
      throw new ImageDecodeError(name, (err as Error).message);
    }
    return decodeSquareBytes(bytes, `${name}.${m.ext}`, side, this.cropFraction);
  }
}
