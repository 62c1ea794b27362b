import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { z } from 'zod';
import { evaluationRecordSchema, jobRecordSchema, parseStored, parseStoredList, stepRecordSchema } from '@facenet/protocol';
import type { EvaluationRecord, JobRecord, StepRecord } from '@facenet/protocol';
import { JobNotFoundError } from './errors';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** The files of an archived job, beside its checkpoints. */
export const ARCHIVE_RECORD = 'job-record.json';
export const ARCHIVE_HISTORY = 'job-history.jsonl.gz';

/** Job ids as the coordinator makes them: never a path out of the checkpoint root. */
const JOB_ID = /^[A-Za-z0-9._-]{1,200}$/;

/** The file's envelope; the job and its evaluations are parsed by their own schemas. */
const archiveEnvelope = z.looseObject({ archivedAt: z.string(), job: z.unknown(), evaluations: z.array(z.unknown()).default([]) });

export interface ArchivedJob {
  job: JobRecord;
  evaluations: EvaluationRecord[];
  archivedAt: string;
}

/**
 * Finished jobs past retention, kept on disk beside their checkpoints: the job header and its
 * evaluations as JSON (`job-record.json`), its whole step history as gzipped JSON Lines, one
 * record a step as it was stored (the segments on disk, then Redis's list). The API reads an archived job
 * from here when Redis no longer has it, so retention loses nothing a user could query.
 */
export class JobArchive {
  constructor(private readonly checkpointRoot: string) {}

  /**
   * Writes the archive (each file to a temporary name, then renamed, the record last: a job whose
   * record is on disk has its whole archive). Throws when a write fails; the caller keeps Redis.
   */
  async write(job: JobRecord, evaluations: readonly unknown[], historyLines: readonly string[]): Promise<void> {
    const dir = join(this.checkpointRoot, job.id);
    await mkdir(dir, { recursive: true });
    const history = await gzipAsync(Buffer.from(historyLines.map((l) => `${l}\n`).join('')));
    await writeAtomically(join(dir, ARCHIVE_HISTORY), history);
    const record = { archivedAt: new Date().toISOString(), job, evaluations, historySteps: historyLines.length };
    await writeAtomically(join(dir, ARCHIVE_RECORD), `${JSON.stringify(record, null, 1)}\n`);
  }

  /** An archived job, or JobNotFoundError (no archive, or not a job id). */
  async read(id: string): Promise<ArchivedJob> {
    if (!JOB_ID.test(id)) throw new JobNotFoundError(id);
    let raw: string;
    try {
      raw = await readFile(join(this.checkpointRoot, id, ARCHIVE_RECORD), 'utf8');
    } catch {
      throw new JobNotFoundError(id);
    }
    const what = `archived job ${id}`;
    const record = parseStored(archiveEnvelope, raw, what);
    return {
      job: parseStored(jobRecordSchema, JSON.stringify(record.job ?? null), what),
      evaluations: parseStoredList(
        evaluationRecordSchema,
        record.evaluations.map((e) => JSON.stringify(e)),
        `${what} evaluations`,
      ),
      archivedAt: record.archivedAt,
    };
  }

  /** A page of an archived job's step history, paged as JobStore.history pages the live one. */
  async history(id: string, o: { limit: number; skip: number }): Promise<{ steps: StepRecord[]; next?: number }> {
    if (!JOB_ID.test(id)) throw new JobNotFoundError(id);
    let lines: string[] = [];
    try {
      const text = (await gunzipAsync(await readFile(join(this.checkpointRoot, id, ARCHIVE_HISTORY)))).toString('utf8');
      lines = text.split('\n').filter((l) => l.length > 0);
    } catch (err) {
      // Archives written before the history was kept have none: an empty history, not an error.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const total = lines.length;
    const from = Math.max(0, total - o.skip - o.limit);
    const to = Math.max(0, total - o.skip);
    const steps = parseStoredList(stepRecordSchema, lines.slice(from, to), `archived job ${id} history`);
    return { steps, next: total > o.skip + o.limit ? o.skip + o.limit : undefined };
  }
}

async function writeAtomically(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}
