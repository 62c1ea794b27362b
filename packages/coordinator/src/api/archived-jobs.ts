import type { JobRecord } from '@facenet/protocol';
import { JobNotFoundError } from '../errors';
import type { ArchivedJob, JobArchive } from '../job-archive';
import type { JobStore } from '../job-store';

/**
 * A job from Redis, else from its archive beside its checkpoints (a finished job past retention):
 * the read routes answer both, so retention never makes a job's record, evaluations or step
 * history unreadable. Changes (pause, resume, cancel) are for jobs in Redis only.
 */
export async function jobOrArchived(store: JobStore, archive: JobArchive, id: string): Promise<{ job: JobRecord; archived?: ArchivedJob }> {
  try {
    return { job: await store.get(id) };
  } catch (err) {
    if (!(err instanceof JobNotFoundError)) throw err;
    const archived = await archive.read(id);
    return { job: archived.job, archived };
  }
}
