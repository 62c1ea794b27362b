import { existsSync, realpathSync } from 'node:fs';
import { delimiter, isAbsolute, relative, resolve } from 'node:path';

/**
 * The folders jobs may read images and pairs from: FACENET_DATA_ROOTS (separated by ':'), else
 * the working directory's `data` and, in development, the shared data beside the checkout.
 */
export function dataRoots(env: NodeJS.ProcessEnv = process.env): string[] {
  const raw = env.FACENET_DATA_ROOTS;
  const roots = raw ? raw.split(delimiter).filter(Boolean) : [resolve('data'), resolve('..', 'shared', 'data')];
  return roots.map((r) => canonical(resolve(r)));
}

/** The real path (symlinks resolved) when it exists, else the normalised path. */
function canonical(path: string): string {
  try {
    return existsSync(path) ? realpathSync(path) : path;
  } catch {
    return path;
  }
}

/** True when `path` (symlinks resolved) is one of `roots` or inside one. */
export function insideRoots(path: string, roots: readonly string[]): boolean {
  const p = canonical(resolve(path));
  return roots.some((root) => {
    const rel = relative(canonical(resolve(root)), p);
    return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
  });
}

/**
 * The one answer for a path outside the roots, whether or not it exists: an error message that
 * told which paths exist would let anyone map the server's disk.
 */
export const OUTSIDE_ROOTS = 'is not inside the data roots this cluster serves (FACENET_DATA_ROOTS)';
