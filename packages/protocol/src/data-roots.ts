import { isRemote } from '@facenet/core';
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
 * The URL prefixes jobs may read datasets from (FACENET_DATA_URLS, separated by commas or spaces,
 * e.g. `https://data.example.com/faces/,s3://faces-bucket/`); none by default. Each is taken as a
 * folder: `https://host/a` allows `https://host/a/...`, never `https://host/ab` or `https://host.evil`.
 */
export function dataUrls(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.FACENET_DATA_URLS ?? '')
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((u) => (u.endsWith('/') ? u : `${u}/`));
}

/** A remote location (http, https, s3) under one of `urls`, normalised first (no `..`, no credentials in it). */
export function underUrls(location: string, urls: readonly string[]): boolean {
  let u: URL;
  try {
    u = new URL(location);
  } catch {
    return false;
  }
  if (u.username || u.password) return false;
  const href = u.href.endsWith('/') ? u.href : `${u.href}/`;
  return urls.some((prefix) => href.startsWith(prefix));
}

/** Whether a dataset location is one this cluster serves: a remote URL under `urls`, else a path inside `roots`. */
export function allowedLocation(location: string, roots: readonly string[], urls: readonly string[] = dataUrls()): boolean {
  return isRemote(location) ? underUrls(location, urls) : insideRoots(location.replace(/^file:\/\//, ''), roots);
}

/**
 * The one answer for a path outside the roots, whether or not it exists: an error message that
 * told which paths exist would let anyone map the server's disk.
 */
export const OUTSIDE_ROOTS = 'is not inside the data roots this cluster serves (FACENET_DATA_ROOTS, or FACENET_DATA_URLS for URLs)';
