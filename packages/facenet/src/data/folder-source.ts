import { Dirent, readdirSync, statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DatasetError } from '../errors';
import { decodeSquare, isImagePath } from './decode-image';
import { FaceSource, IdentityIndex, SquareImage } from './face-source';

export interface FolderSourceOptions {
  /** Fraction of the shorter side kept by the centre crop (LFW's 250 px frames: ~0.5 keeps the face). @default 1 */
  cropFraction?: number;
  /** Decoded images kept in memory (LRU by insertion). @default 20000 */
  cacheSize?: number;
  /** Identity folder names to leave out (e.g. the people of held-out evaluation folds). @default [] */
  exclude?: string[];
  /** An index already scanned (by scanPeopleFolderAsync), so construction touches no disk. */
  index?: IdentityIndex;
}

/** The most images a dataset folder may hold: indexing is synchronous, so it is bounded. */
export const MAX_FOLDER_IMAGES = 5_000_000;

/**
 * Scans `root/<identity>/<image>`; sorted, so labels are stable across machines. Entries that
 * cannot be read (a broken symlink, no permission) are skipped, never thrown as raw errors.
 */
export function scanPeopleFolder(root: string): IdentityIndex {
  let entries: string[];
  try {
    entries = readdirSync(root).sort();
  } catch (err) {
    throw new DatasetError(`cannot read dataset folder ${root}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const index: IdentityIndex = { names: [], images: [] };
  let total = 0;
  for (const name of entries) {
    const dir = join(root, name);
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) continue;
    let files: string[];
    try {
      files = readdirSync(dir);
    } catch {
      continue;
    }
    const images = files.filter(isImagePath).sort().map((f) => join(dir, f));
    if (images.length === 0) continue;
    total += images.length;
    if (total > MAX_FOLDER_IMAGES) throw new DatasetError(`${root} holds more than ${MAX_FOLDER_IMAGES} images; split it into several datasets`);
    index.names.push(name);
    index.images.push(images);
  }
  if (index.names.length === 0) {
    throw new DatasetError(`${root} holds no identity folders with images (expected root/<identity>/<image>.jpg|png|pgm|gif)`);
  }
  return index;
}

/**
 * The same scan without blocking the event loop (a server validating a job stays responsive):
 * one directory read at a time, bounded by `maxImages` and by a deadline.
 */
export async function scanPeopleFolderAsync(root: string, o: { maxImages?: number; deadlineMs?: number } = {}): Promise<IdentityIndex> {
  const maxImages = o.maxImages ?? MAX_FOLDER_IMAGES;
  const deadline = Date.now() + (o.deadlineMs ?? 30_000);
  let entries: Dirent[];
  try {
    entries = (await readdir(root, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (err) {
    throw new DatasetError(`cannot read dataset folder ${root}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const index: IdentityIndex = { names: [], images: [] };
  let total = 0;
  for (const e of entries) {
    if (Date.now() > deadline) throw new DatasetError(`scanning ${root} took longer than ${(o.deadlineMs ?? 30_000) / 1000} s; split it into several datasets`);
    const dir = join(root, e.name);
    if (!e.isDirectory() && !(e.isSymbolicLink() && (await stat(dir).catch(() => undefined))?.isDirectory())) continue;
    const files = await readdir(dir).catch(() => [] as string[]);
    const images = files.filter(isImagePath).sort().map((f) => join(dir, f));
    if (images.length === 0) continue;
    total += images.length;
    if (total > maxImages) throw new DatasetError(`${root} holds more than ${maxImages} images; split it into several datasets`);
    index.names.push(e.name);
    index.images.push(images);
  }
  if (index.names.length === 0) {
    throw new DatasetError(`${root} holds no identity folders with images (expected root/<identity>/<image>.jpg|png|pgm|gif)`);
  }
  return index;
}

/** A people-folder dataset on disk. */
export class FolderSource implements FaceSource {
  readonly index: IdentityIndex;
  readonly description: string;
  private readonly cache = new Map<string, Promise<SquareImage>>();
  readonly cropFraction: number;
  private readonly cacheSize: number;

  constructor(readonly root: string, options: FolderSourceOptions = {}) {
    this.root = resolve(root);
    const scanned = options.index ?? scanPeopleFolder(this.root);
    const exclude = new Set(options.exclude ?? []);
    const keep = scanned.names.flatMap((name, i) => (exclude.has(name) ? [] : [i]));
    this.index = { names: keep.map((i) => scanned.names[i] as string), images: keep.map((i) => scanned.images[i] as string[]) };
    this.cropFraction = options.cropFraction ?? 1;
    this.cacheSize = options.cacheSize ?? 20000;
    const n = this.index.images.reduce((s, i) => s + i.length, 0);
    this.description = `${this.root} (${this.index.names.length} identities, ${n} images)`;
  }

  read(key: string, side: number): Promise<SquareImage> {
    const cacheKey = `${side}:${key}`;
    const hit = this.cache.get(cacheKey);
    if (hit) return hit;
    const p = decodeSquare(key, side, this.cropFraction);
    // Failed decodes are not cached: the error is reported each time the image is drawn.
    p.catch(() => this.cache.delete(cacheKey));
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(cacheKey, p);
    return p;
  }
}
