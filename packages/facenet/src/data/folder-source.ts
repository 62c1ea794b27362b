import { Dirent, readdirSync, realpathSync, statSync } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { DatasetError, ImageDecodeError } from '../errors';
import { decodeSquare, isImagePath } from './decode-image';
import { DecodedCache } from './decoded-cache';
import { FaceSource, IdentityIndex, imageCount, SquareImage, withoutIdentities } from './face-source';
import { PackedIndexBuilder } from './packed-index';

export interface FolderSourceOptions {
  /** Fraction of the shorter side kept by the centre crop (LFW's 250 px frames: ~0.5 keeps the face). @default 1 */
  cropFraction?: number;
  /** Decoded images kept in memory (LRU by insertion). @default 20000 */
  cacheSize?: number;
  /** Identity folder names to leave out (e.g. the people of held-out evaluation folds). @default [] */
  exclude?: string[];
  /** An index already scanned (scanPeopleFolderAsync, or packPeopleFolder unpacked with the root as prefix), so construction touches no disk. */
  index?: IdentityIndex;
}

/** True when `path` is `root` or inside it (both already resolved). */
function within(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** The real path of `p`, or undefined when it cannot be resolved (broken link, no permission). */
function realOrUndefined(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
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
  const realRoot = realOrUndefined(root) ?? resolve(root);
  for (const name of entries) {
    const dir = join(root, name);
    if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) continue;
    // A person folder that is a link to a folder outside the dataset is not part of it.
    const real = realOrUndefined(dir);
    if (!real || !within(realRoot, real)) continue;
    let files: string[];
    try {
      files = readdirSync(dir);
    } catch {
      continue;
    }
    const images = files
      .filter(isImagePath)
      .sort()
      .map((f) => join(dir, f));
    if (images.length === 0) continue;
    total += images.length;
    if (total > MAX_FOLDER_IMAGES)
      throw new DatasetError(`${root} holds more than ${MAX_FOLDER_IMAGES} images; split it into several datasets`);
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
export async function scanPeopleFolderAsync(root: string, o: FolderScanOptions = {}): Promise<IdentityIndex> {
  const index: IdentityIndex = { names: [], images: [] };
  await walkPeopleFolder(root, o, (name, files) => {
    index.names.push(name);
    index.images.push(files.map((f) => join(root, name, f)));
  });
  return index;
}

/**
 * The scan packed as it goes (keys `<identity>/<file>`, relative to `root`): a folder of
 * millions of images never exists as millions of strings. Unpack with the root as key prefix.
 */
export async function packPeopleFolder(root: string, o: FolderScanOptions = {}): Promise<Buffer> {
  const b = new PackedIndexBuilder(o.onProgress);
  await walkPeopleFolder(root, o, (name, files) => {
    for (const f of files) b.add(name, `${name}/${f}`);
  });
  return b.finish();
}

export interface FolderScanOptions {
  /** @default MAX_FOLDER_IMAGES */
  maxImages?: number;
  /** @default 30000 */
  deadlineMs?: number;
  /** Told the images found so far, every 65,536 (packPeopleFolder). */
  onProgress?: (images: number) => void;
}

/** Visits each identity folder with images, in sorted order, with its sorted image file names. */
async function walkPeopleFolder(root: string, o: FolderScanOptions, visit: (name: string, files: string[]) => void): Promise<void> {
  const maxImages = o.maxImages ?? MAX_FOLDER_IMAGES;
  const deadline = Date.now() + (o.deadlineMs ?? 30_000);
  let entries: Dirent[];
  try {
    entries = (await readdir(root, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (err) {
    throw new DatasetError(`cannot read dataset folder ${root}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let total = 0;
  let identities = 0;
  const realRoot = await realpath(root).catch(() => resolve(root));
  for (const e of entries) {
    if (Date.now() > deadline)
      throw new DatasetError(
        `scanning ${root} took longer than ${(o.deadlineMs ?? 30_000) / 1000} s; split it into several datasets or write a manifest (facenet data manifest)`,
      );
    const dir = join(root, e.name);
    if (!e.isDirectory() && !(e.isSymbolicLink() && (await stat(dir).catch(() => undefined))?.isDirectory())) continue;
    if (e.isSymbolicLink()) {
      const real = await realpath(dir).catch(() => undefined);
      if (!real || !within(realRoot, real)) continue; // a link out of the dataset is not part of it
    }
    const files = (await readdir(dir).catch(() => [] as string[])).filter(isImagePath).sort();
    if (files.length === 0) continue;
    total += files.length;
    if (total > maxImages) throw new DatasetError(`${root} holds more than ${maxImages} images; split it into several datasets`);
    identities++;
    visit(e.name, files);
  }
  if (identities === 0) {
    throw new DatasetError(`${root} holds no identity folders with images (expected root/<identity>/<image>.jpg|png|pgm|gif)`);
  }
}

/** A people-folder dataset on disk. */
export class FolderSource implements FaceSource {
  readonly index: IdentityIndex;
  readonly description: string;
  private readonly decoded: DecodedCache;
  readonly cropFraction: number;
  /** Identity folder name -> label, built when a key is first checked. */
  private labels: Map<string, number> | undefined;
  private realRoot: Promise<string> | undefined;

  constructor(
    readonly root: string,
    options: FolderSourceOptions = {},
  ) {
    this.root = resolve(root);
    const scanned = options.index ?? scanPeopleFolder(this.root);
    this.index = withoutIdentities(scanned, options.exclude);
    this.cropFraction = options.cropFraction ?? 1;
    this.decoded = new DecodedCache(options.cacheSize);
    this.description = `${this.root} (${this.index.names.length} identities, ${imageCount(this.index)} images)`;
  }

  read(key: string, side: number): Promise<SquareImage> {
    return this.decoded.get(key, side, () => this.resolveKey(key).then((path) => decodeSquare(path, side, this.cropFraction)));
  }

  /**
   * The file behind a key, if it is one of this dataset's images and its real path (links
   * resolved) stays inside the dataset's folder. Every refusal gives the same reason, whether
   * the file exists or not, so a refusal never tells what is on the disk.
   */
  private async resolveKey(key: string): Promise<string> {
    const refuse = () => new ImageDecodeError(key, 'not an image of this dataset');
    if (!this.isImageOfIndex(key)) throw refuse();
    this.realRoot ??= realpath(this.root).catch(() => this.root);
    const real = await realpath(key).catch(() => undefined);
    if (!real || !within(await this.realRoot, real)) throw refuse();
    return real;
  }

  /** Whether `key` is one of the index's images: `<root>/<identity>/<file>` listed under that identity. */
  private isImageOfIndex(key: string): boolean {
    const dir = dirname(key);
    if (resolve(dirname(dir)) !== this.root) return false;
    this.labels ??= new Map(this.index.names.map((name, i) => [name, i]));
    const label = this.labels.get(basename(dir));
    return label !== undefined && (this.index.images[label] as string[]).includes(key);
  }
}
