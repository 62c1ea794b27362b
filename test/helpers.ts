import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { selectBackend } from '@facenet/core';

/** The read-only face data beside the project root (../shared/data). */
export const SHARED_DATA = process.env.FACENET_SHARED_DATA ?? resolve(__dirname, '..', '..', 'shared', 'data');
export const ORL = join(SHARED_DATA, 'orl');
export const LFW = join(SHARED_DATA, 'lfw');
export const REPO = resolve(__dirname, '..');
export const CLI = join(REPO, 'packages', 'cli', 'dist', 'main.js');

/** Tests run on the best backend present (wasm on development machines), silently. */
export function useBackend(): Promise<unknown> {
  return selectBackend({ log: null });
}

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(prefix = 'facenet-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
