import { rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CheckpointEntry, insideRoots } from '@facenet/protocol';

/**
 * The checkpoints a retention of `keepLast` deletes: all but the newest `keepLast`, the best by
 * VAL (`bestStep`), and any still referenced (`pinned` dirs: what a job restores from or was
 * forked from). keepLast 0 keeps everything.
 */
export function checkpointsToDelete(
  checkpoints: readonly CheckpointEntry[],
  keepLast: number,
  bestStep: number | undefined,
  pinned: ReadonlySet<string>,
): CheckpointEntry[] {
  if (keepLast <= 0) return [];
  const newest = new Set(checkpoints.slice(-keepLast).map((c) => c.dir));
  return checkpoints.filter((c) => !newest.has(c.dir) && c.step !== bestStep && !pinned.has(c.dir));
}

/** Deletes checkpoint folders, but only strictly inside `root` (the job's own checkpoint folder), symlinks resolved. */
export async function deleteCheckpoints(entries: readonly CheckpointEntry[], root: string, log: (line: string) => void): Promise<void> {
  for (const c of entries) {
    if (resolve(c.dir) === resolve(root) || !insideRoots(c.dir, [root])) {
      log(`retention: kept ${c.dir}: outside the job's folder ${root}`);
      continue;
    }
    await rm(c.dir, { recursive: true, force: true }).catch((err: Error) => log(`retention: could not delete ${c.dir}: ${err.message}`));
  }
}
