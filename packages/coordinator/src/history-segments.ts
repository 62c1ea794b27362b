import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Step records moved to disk at a time: a segment file each. */
export const SPILL_BATCH = 500;

/**
 * The older part of long step histories, on disk beside the job's checkpoints: Redis keeps the
 * newest records (JobStore's list), and each time it holds HISTORY_CAP + SPILL_BATCH the oldest
 * SPILL_BATCH move to `<root>/<job>/history/steps-<offset>.jsonl.gz`, named by the index of their
 * first record in the job's whole history. A segment is written before the records leave Redis,
 * under its offset, so writing it again after a crash writes the same file.
 */
export class HistorySegments {
  constructor(private readonly root: string) {}

  private file(jobId: string, offset: number): string {
    return join(this.root, jobId, 'history', `steps-${String(offset).padStart(12, '0')}.jsonl.gz`);
  }

  async write(jobId: string, offset: number, lines: readonly string[]): Promise<void> {
    const file = this.file(jobId, offset);
    await mkdir(join(this.root, jobId, 'history'), { recursive: true });
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, await gzipAsync(Buffer.from(lines.map((l) => `${l}\n`).join(''))));
    await rename(tmp, file);
  }

  /** Records [from, to) of the spilled part (raw JSON lines); a segment gone from disk reads as none. */
  async read(jobId: string, from: number, to: number): Promise<string[]> {
    const out: string[] = [];
    for (let offset = Math.floor(from / SPILL_BATCH) * SPILL_BATCH; offset < to; offset += SPILL_BATCH) {
      let lines: string[] = [];
      try {
        lines = (await gunzipAsync(await readFile(this.file(jobId, offset)))).toString('utf8').split('\n').slice(0, -1);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      out.push(...lines.slice(Math.max(0, from - offset), to - offset));
    }
    return out;
  }

  /** Removes a job's segments (its archive holds the whole history by then). */
  async remove(jobId: string): Promise<void> {
    await rm(join(this.root, jobId, 'history'), { recursive: true, force: true });
  }
}
