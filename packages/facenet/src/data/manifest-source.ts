import { createReadStream, ReadStream } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { dirname, extname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import Papa from 'papaparse';
import { DatasetError, ImageDecodeError } from '../errors';
import { decodeSquare, isImagePath } from './decode-image';
import { FaceSource, IdentityIndex, imageCount, SquareImage, withoutIdentities } from './face-source';
import { PackedIndexBuilder } from './packed-index';

/**
 * A manifest dataset: one file listing every image and its identity, so a set of millions is
 * admitted by reading one file instead of walking a tree. Two forms:
 *  - CSV (`.csv`) with a header row naming a `path` and an `identity` column (others ignored);
 *    errors name the data row (the line after the header, when no field holds a line break);
 *  - JSON Lines (`.jsonl`, `.ndjson`): one `{"path": ..., "identity": ...}` object a line;
 *    errors name the line.
 * Paths are relative to the manifest's folder and stay inside it (no absolute paths, no `..`).
 */
export interface ManifestScanOptions {
  /** @default 20_000_000 */
  maxImages?: number;
  /** @default 120_000 */
  deadlineMs?: number;
  /** Told the rows read so far, every 65,536. */
  onProgress?: (images: number) => void;
}

export const MAX_MANIFEST_IMAGES = 20_000_000;

/** Checks one row's fields; returns the normalised relative path or throws naming the row (`where`). */
function checkLine(where: string, path: unknown, identity: unknown): string {
  const bad = (why: string) => new DatasetError(`${where}: ${why}`);
  if (typeof path !== 'string' || !path) throw bad('no path');
  if (typeof identity !== 'string' || !identity) throw bad(`no identity for ${path}`);
  const rel = normalize(path);
  if (isAbsolute(rel) || rel === '..' || rel.startsWith(`..${sep}`)) throw bad(`${path} is not a path inside the manifest's folder`);
  if (!isImagePath(rel)) throw bad(`${path} is not an image file (jpg, png, gif, webp, tiff, pgm, ppm)`);
  return rel;
}

type RowSink = (where: string, path: unknown, identity: unknown) => void;

/** Opens a manifest for reading, or throws a DatasetError naming it. */
async function openManifest(file: string): Promise<ReadStream> {
  const input = createReadStream(file);
  await new Promise<void>((ok, fail) => {
    input.once('open', () => ok());
    input.once('error', (err: NodeJS.ErrnoException) => fail(new DatasetError(`cannot read manifest ${file}: ${err.code ?? err.message}`)));
  });
  return input;
}

/** CSV rows through papaparse (quoted fields, any column order; 4x csv-parse's rate measured here: 0.9 s a million rows). */
async function csvRows(file: string, sink: RowSink): Promise<void> {
  const input = await openManifest(file);
  let row = 0;
  let failure: Error | undefined;
  await new Promise<void>((ok, fail) => {
    Papa.parse<Record<string, string>>(input as unknown as File, {
      header: true,
      skipEmptyLines: true,
      step: (r, parser) => {
        try {
          row++;
          sink(`row ${row}`, r.data.path?.trim(), r.data.identity?.trim());
        } catch (err) {
          failure = err as Error;
          parser.abort();
        }
      },
      complete: () => (failure ? fail(failure) : ok()),
      error: (err: Error) => fail(new DatasetError(`${file}: ${err.message}`)),
    });
  });
}

/** JSON Lines: one {"path", "identity"} object a line. */
async function jsonLines(file: string, sink: RowSink): Promise<void> {
  const input = await openManifest(file);
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++;
    if (!text.trim()) continue;
    let row: { path?: unknown; identity?: unknown } | null;
    try {
      row = JSON.parse(text) as typeof row;
    } catch {
      throw new DatasetError(`line ${line}: not a JSON object`);
    }
    sink(`line ${line}`, row?.path, row?.identity);
  }
}

/** Reads a manifest into a packed index (keys: paths relative to the manifest's folder). */
export async function packManifest(file: string, o: ManifestScanOptions = {}): Promise<Buffer> {
  const maxImages = o.maxImages ?? MAX_MANIFEST_IMAGES;
  const deadlineMs = o.deadlineMs ?? 120_000;
  const deadline = Date.now() + deadlineMs;
  const ext = extname(file).toLowerCase();
  const read = ext === '.csv' ? csvRows : ext === '.jsonl' || ext === '.ndjson' ? jsonLines : undefined;
  if (!read) throw new DatasetError(`${file}: a manifest is .csv, .jsonl or .ndjson`);
  const b = new PackedIndexBuilder(o.onProgress);
  let rows = 0;
  await read(file, (where, path, identity) => {
    b.add(identity as string, checkLine(where, path, identity));
    if (++rows > maxImages) throw new DatasetError(`${file} lists more than ${maxImages} images; split it into several datasets`);
    if (rows % 65536 === 0 && Date.now() > deadline)
      throw new DatasetError(`reading ${file} took longer than ${deadlineMs / 1000} s (${rows} rows read)`);
  });
  if (b.identities === 0) throw new DatasetError(`${file} lists no images`);
  return b.finish();
}

export interface ManifestSourceOptions {
  /** @default 1 */
  cropFraction?: number;
  /** Identities to leave out. @default [] */
  exclude?: string[];
}

/**
 * The images a manifest lists. `index` is the packed manifest unpacked with the manifest's folder
 * (and a separator) as key prefix. A key is opened only when its real path stays inside that folder.
 */
export class ManifestSource implements FaceSource {
  readonly index: IdentityIndex;
  readonly description: string;
  readonly cropFraction: number;
  readonly folder: string;
  private realFolder: Promise<string> | undefined;

  constructor(
    readonly file: string,
    index: IdentityIndex,
    o: ManifestSourceOptions = {},
  ) {
    this.folder = dirname(resolve(file));
    this.index = withoutIdentities(index, o.exclude);
    this.cropFraction = o.cropFraction ?? 1;
    this.description = `manifest ${file} (${this.index.names.length} identities, ${imageCount(this.index)} images)`;
  }

  /** The key prefix a packed manifest is unpacked with. */
  static keyPrefix(file: string): string {
    return join(dirname(resolve(file)), '/');
  }

  async read(key: string, side: number): Promise<SquareImage> {
    this.realFolder ??= realpath(this.folder).catch(() => this.folder);
    const real = await realpath(key).catch((err: NodeJS.ErrnoException) => {
      throw new ImageDecodeError(key, err.code ?? err.message); // missing: skipped and counted like a corrupt image
    });
    const rel = relative(await this.realFolder, real);
    if (!rel || rel.startsWith('..') || isAbsolute(rel)) throw new ImageDecodeError(key, 'not an image of this dataset');
    return decodeSquare(real, side, this.cropFraction);
  }
}
