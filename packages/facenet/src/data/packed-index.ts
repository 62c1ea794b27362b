import { DatasetError } from '../errors';
import { lazyList } from '../util/lazy-list';
import { IdentityIndex } from './face-source';

/**
 * An identity index packed into one buffer: identity names and image keys as UTF-8 with uint32
 * end offsets, grouped by identity. A million LFW-style keys take ~40 bytes each (4 of offset,
 * the rest the key itself), against ~2.8 KB per image as JS strings and arrays. It is built once
 * at admission and stored; every process maps it (typed-array views, no parse) and builds an
 * identity's keys only when that identity is read.
 *
 * Layout (little-endian): "FNX1", uint32 header length, a JSON header {identities, images}
 * padded to 4 bytes, uint32 starts[identities + 1] (first image of each identity), uint32
 * nameEnds[identities], uint32 keyEnds[images], then the name bytes and the key bytes.
 */
const MAGIC = 'FNX1';

/** Most key bytes one index may hold (offsets are uint32). */
const MAX_KEY_BYTES = 2 ** 32 - 1;

/** Collects (identity, key) pairs in any order; `finish` groups them by identity (order of first appearance). */
export class PackedIndexBuilder {
  private readonly ids = new Map<string, number>();
  private readonly names: string[] = [];
  private identityOf: Uint32Array<ArrayBuffer> = new Uint32Array(1024);
  private keyEnds: Uint32Array<ArrayBuffer> = new Uint32Array(1024);
  private keyBytes = Buffer.alloc(64 * 1024);
  private count = 0;
  private used = 0;

  /** `onProgress`: told the images added so far, every 65,536 (admission shows it in the job view). */
  constructor(private readonly onProgress?: (images: number) => void) {}

  get images(): number {
    return this.count;
  }

  get identities(): number {
    return this.names.length;
  }

  add(identity: string, key: string): void {
    let id = this.ids.get(identity);
    if (id === undefined) {
      id = this.names.length;
      this.ids.set(identity, id);
      this.names.push(identity);
    }
    if (this.count === this.keyEnds.length) {
      this.identityOf = grow(this.identityOf);
      this.keyEnds = grow(this.keyEnds);
    }
    const len = Buffer.byteLength(key);
    if (this.used + len > MAX_KEY_BYTES) throw new DatasetError(`the index's keys exceed ${MAX_KEY_BYTES} bytes; split the dataset`);
    while (this.used + len > this.keyBytes.length) {
      const bigger = Buffer.alloc(Math.min(MAX_KEY_BYTES, this.keyBytes.length * 2));
      this.keyBytes.copy(bigger, 0, 0, this.used);
      this.keyBytes = bigger;
    }
    this.keyBytes.write(key, this.used);
    this.used += len;
    this.identityOf[this.count] = id;
    this.keyEnds[this.count] = this.used;
    this.count++;
    if (this.onProgress && this.count % 65536 === 0) this.onProgress(this.count);
  }

  /** The packed buffer; identities with no image never appear (they are never added). */
  finish(): Buffer {
    const n = this.names.length;
    const m = this.count;
    // Counting sort of images by identity, keeping each identity's images in the order added.
    const starts = new Uint32Array(n + 1);
    for (let i = 0; i < m; i++) {
      const k = (this.identityOf[i] as number) + 1;
      starts[k] = (starts[k] as number) + 1;
    }
    for (let i = 1; i <= n; i++) starts[i] = (starts[i] as number) + (starts[i - 1] as number);
    const nameBytes = this.names.map((s) => Buffer.from(s));
    const nameEnds = new Uint32Array(n);
    let nb = 0;
    nameBytes.forEach((b, i) => (nameEnds[i] = nb += b.length));
    const header = Buffer.from(JSON.stringify({ identities: n, images: m }));
    const headerLen = Math.ceil(header.length / 4) * 4;
    const tables = 4 * (n + 1 + n + m);
    const base = 8 + headerLen;
    const out = Buffer.alloc(base + tables + nb + this.used);
    out.write(MAGIC, 0, 'latin1');
    out.writeUInt32LE(headerLen, 4);
    out.fill(0x20, 8, base);
    header.copy(out, 8);
    const u32 = (offset: number, length: number) => new Uint32Array(out.buffer, out.byteOffset + offset, length);
    u32(base, n + 1).set(starts);
    u32(base + 4 * (n + 1), n).set(nameEnds);
    const outKeyEnds = u32(base + 4 * (2 * n + 1), m);
    let at = base + tables;
    for (const b of nameBytes) at += b.copy(out, at);
    // Keys in identity order: each image goes to the next free slot of its identity.
    const next = starts.slice(0, n);
    const order = new Uint32Array(m);
    for (let i = 0; i < m; i++) {
      const id = this.identityOf[i] as number;
      const slot = next[id] as number;
      order[slot] = i;
      next[id] = slot + 1;
    }
    let kb = 0;
    for (let slot = 0; slot < m; slot++) {
      const i = order[slot] as number;
      const from = i === 0 ? 0 : (this.keyEnds[i - 1] as number);
      kb += this.keyBytes.copy(out, at + kb, from, this.keyEnds[i] as number);
      outKeyEnds[slot] = kb;
    }
    return out;
  }
}

function grow(a: Uint32Array<ArrayBuffer>): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(a.length * 2);
  b.set(a);
  return b;
}

/** A packed index read back: `names` and `images` are read from the buffer when used. */
export interface UnpackedIndex extends IdentityIndex {
  sizes: Uint32Array;
  /** Bytes of the packed form. */
  packedBytes: number;
}

/**
 * Maps a packed buffer as an identity index; each key is `keyPrefix` + the stored key (a
 * folder's root, say, so the stored keys stay relative and short). O(identities) work, none per image.
 */
export function unpackIndex(packed: Uint8Array, keyPrefix = ''): UnpackedIndex {
  // Typed-array views need 4-byte alignment: a buffer sliced out of a larger one may lack it.
  let buf = Buffer.from(packed.buffer, packed.byteOffset, packed.byteLength);
  if (packed.byteOffset % 4 !== 0) {
    buf = Buffer.alloc(packed.byteLength); // never pooled, so aligned
    buf.set(packed);
  }
  if (buf.length < 8 || buf.toString('latin1', 0, 4) !== MAGIC) throw new DatasetError('not a packed dataset index (bad magic)');
  const headerLen = buf.readUInt32LE(4);
  let header: { identities?: unknown; images?: unknown } | null;
  try {
    header = JSON.parse(buf.toString('utf8', 8, 8 + headerLen)) as typeof header;
  } catch {
    throw new DatasetError('a packed dataset index with a corrupt header');
  }
  const n = header?.identities;
  const m = header?.images;
  if (headerLen % 4 !== 0 || !isCount(n) || !isCount(m)) throw new DatasetError('a packed dataset index with a corrupt header');
  const base = 8 + headerLen;
  const tables = 4 * (2 * n + 1 + m);
  if (base + tables > buf.length) throw new DatasetError('a packed dataset index shorter than its header says (truncated?)');
  const u32 = (offset: number, length: number) => new Uint32Array(buf.buffer, buf.byteOffset + offset, length);
  const starts = u32(base, n + 1);
  const nameEnds = u32(base + 4 * (n + 1), n);
  const keyEnds = u32(base + 4 * (2 * n + 1), m);
  // O(identities) checks that keep every list consistent with its size (the keys' own offsets are
  // only clamped when read: a wrong one yields a key that is no image, refused where it is opened).
  if (starts[0] !== 0 || starts[n] !== m || !nonDecreasing(starts) || !nonDecreasing(nameEnds))
    throw new DatasetError('a packed dataset index with corrupt tables');
  const namesAt = base + tables;
  const keysAt = namesAt + (n ? (nameEnds[n - 1] as number) : 0);
  if (keysAt + (m ? (keyEnds[m - 1] as number) : 0) > buf.length)
    throw new DatasetError('a packed dataset index shorter than its tables say (truncated?)');
  const sizes = new Uint32Array(n);
  for (let i = 0; i < n; i++) sizes[i] = (starts[i + 1] as number) - (starts[i] as number);
  const name = (i: number) =>
    buf.toString('utf8', namesAt + (i === 0 ? 0 : (nameEnds[i - 1] as number)), namesAt + (nameEnds[i] as number));
  const key = (j: number) =>
    keyPrefix + buf.toString('utf8', keysAt + (j === 0 ? 0 : (keyEnds[j - 1] as number)), keysAt + (keyEnds[j] as number));
  return {
    names: lazyList(n, name),
    images: lazyList(n, (i) => {
      const out: string[] = [];
      for (let j = starts[i] as number; j < (starts[i + 1] as number); j++) out.push(key(j));
      return out;
    }),
    sizes,
    packedBytes: buf.length,
  };
}

function isCount(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 32;
}

function nonDecreasing(a: Uint32Array): boolean {
  for (let i = 1; i < a.length; i++) if ((a[i] as number) < (a[i - 1] as number)) return false;
  return true;
}

/** Packs an index already in memory (a folder scanned, a file list) in its identity order. */
export function packIndex(index: IdentityIndex, keyOf: (key: string) => string = (k) => k): Buffer {
  const b = new PackedIndexBuilder();
  index.images.forEach((imgs, i) => {
    for (const k of imgs) b.add(index.names[i] as string, keyOf(k));
  });
  return b.finish();
}
