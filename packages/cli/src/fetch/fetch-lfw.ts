import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tar from 'tar';
import { DatasetError, DownloadError, readPairsFile } from '@facenet/core';
import { download, DownloadResult } from './download';

/** Where LFW (deep-funneled) and its pairs are published; override with --url / --pairs-url. */
export const LFW_DEFAULT_URL = process.env.FACENET_LFW_URL ?? 'http://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz';
export const LFW_PAIRS_DEFAULT_URL = process.env.FACENET_LFW_PAIRS_URL ?? 'http://vis-www.cs.umass.edu/lfw/pairs.txt';

export interface FetchLfwOptions {
  dest: string;
  url?: string;
  pairsUrl?: string;
  sha256?: string;
  pairsSha256?: string;
  onProgress?: (what: string, bytes: number, total: number | undefined) => void;
}

export interface FetchLfwResult {
  imagesDir: string;
  pairsFile: string;
  identities: number;
  archive: DownloadResult;
  pairs: DownloadResult;
}

/** The folder inside an extracted archive that holds the people folders. */
function peopleRoot(dir: string): string {
  const entries = readdirSync(dir).filter((n) => statSync(join(dir, n)).isDirectory());
  if (entries.length === 1) {
    const inner = join(dir, entries[0] as string);
    const innerDirs = readdirSync(inner).filter((n) => statSync(join(inner, n)).isDirectory());
    if (innerDirs.length > 0) return inner;
  }
  if (entries.length === 0) throw new DatasetError('the archive holds no folders (expected <name>/<name>_NNNN.jpg)');
  return dir;
}

/**
 * Downloads LFW's archive and pairs.txt, verifies their sha256 when given, extracts the images
 * and lays them out as <dest>/images/<Name>/<Name>_NNNN.jpg and <dest>/pairs.txt. Nothing is
 * left half-done: extraction happens in a temporary folder that is renamed into place.
 */
export async function fetchLfw(o: FetchLfwOptions): Promise<FetchLfwResult> {
  const dest = resolve(o.dest);
  const imagesDir = join(dest, 'images');
  if (existsSync(imagesDir)) throw new DatasetError(`${imagesDir} already exists; remove it to fetch again`);
  const createdDest = !existsSync(dest);
  await mkdir(dest, { recursive: true });
  const archivePath = join(dest, 'lfw-archive.tgz');
  const pairsFile = join(dest, 'pairs.txt');
  const hadPairs = existsSync(pairsFile);
  let archive: DownloadResult;
  let pairs: DownloadResult;
  try {
    archive = await download(o.url ?? LFW_DEFAULT_URL, archivePath, {
      expectedSha256: o.sha256,
      onProgress: (b, t) => o.onProgress?.('archive', b, t),
    });
    pairs = await download(o.pairsUrl ?? LFW_PAIRS_DEFAULT_URL, pairsFile, {
      expectedSha256: o.pairsSha256,
      onProgress: (b, t) => o.onProgress?.('pairs', b, t),
    });
    readPairsFile(pairsFile); // fail now, naming the line, if it is not a pairs file
    const tmp = await mkdtemp(join(dest, '.extract-'));
    try {
      await tar.x({ file: archivePath, cwd: tmp, strict: true });
      await rename(peopleRoot(tmp), imagesDir);
    } catch (err) {
      throw new DatasetError(`cannot extract ${archivePath}: ${(err as Error).message}`);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    // Leave nothing behind that this run made: the archive, a pairs file it wrote, the folder itself.
    await rm(archivePath, { force: true });
    if (!hadPairs) await rm(pairsFile, { force: true });
    if (createdDest && readdirSync(dest).length === 0) await rm(dest, { recursive: true, force: true });
    if (err instanceof DownloadError && !err.reason.startsWith('sha256 mismatch'))
      throw new DownloadError(
        err.url,
        `${err.reason}; without internet access, download it elsewhere and serve it on your network: --url URL (and --pairs-url URL)`,
      );
    throw err;
  }
  await rm(archivePath, { force: true });
  const identities = readdirSync(imagesDir).length;
  return { imagesDir, pairsFile, identities, archive, pairs };
}
