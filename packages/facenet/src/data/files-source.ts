import { statSync, readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DatasetError } from '../errors';
import { decodeSquare, isImagePath } from './decode-image';
import { FaceSource, IdentityIndex, SquareImage } from './face-source';

/** Every image file under `path` (a file or a folder, recursively), sorted. */
export function listImages(path: string): string[] {
  const root = resolve(path);
  let st;
  try {
    st = statSync(root);
  } catch {
    throw new DatasetError(`no such file or folder: ${path}`);
  }
  if (st.isFile()) {
    if (!isImagePath(root)) throw new DatasetError(`${path} is not an image file (jpg, png, gif, webp, tiff, pgm, ppm)`);
    return [root];
  }
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (isImagePath(p)) out.push(p);
    }
  };
  walk(root);
  if (out.length === 0) throw new DatasetError(`${path} holds no image files`);
  return out;
}

/**
 * An explicit list of image files; the identity of each is its parent folder's name (so a
 * people-folder gallery gets its labels, a flat folder gets one label per file's name).
 */
export class FilesSource implements FaceSource {
  readonly index: IdentityIndex;
  readonly description: string;

  constructor(
    readonly files: string[],
    readonly cropFraction = 1,
    flatLabels = false,
  ) {
    const byName = new Map<string, string[]>();
    for (const f of files) {
      const label = flatLabels ? basename(f).replace(/\.[^.]+$/, '') : basename(dirname(f));
      if (!byName.has(label)) byName.set(label, []);
      byName.get(label)?.push(f);
    }
    this.index = { names: [...byName.keys()], images: [...byName.values()] };
    this.description = `${files.length} image files`;
  }

  read(key: string, side: number): Promise<SquareImage> {
    return decodeSquare(key, side, this.cropFraction);
  }
}
