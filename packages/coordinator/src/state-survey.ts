import { HeldState, StateQuery } from '@facenet/protocol';
import { JobRecord } from '@facenet/protocol';
import { WorkerInboxes } from './worker-inboxes';

/** The state the job continues from: a step, the weights' checksum, and the workers holding it. */
export interface VerifiedState {
  step: number;
  checksum: string;
  holders: string[];
}

let queries = 0;

/** Runs one state query on a worker (between its steps: its inbox runs one item at a time, in order). */
export async function queryState(
  inboxes: WorkerInboxes,
  job: JobRecord,
  workerId: string,
  timeoutMs: number,
  checkpointDir?: string,
): Promise<HeldState | null> {
  const q: StateQuery = { kind: 'state', jobId: job.id, checkpointDir };
  const added = await inboxes.add(workerId, q, `${job.id}-state-g${job.generation}-${workerId}-${Date.now()}-${queries++}`);
  return (await inboxes.result(added, timeoutMs)) as HeldState | null;
}

/**
 * Asks every candidate what it holds for the job and picks the newest state its holders agree
 * on: at the committed step, or one past it when every rank had applied the step in flight and
 * one died before reporting. Holders of one step that disagree on the checksum verify nothing.
 */
export async function surveyState(
  inboxes: WorkerInboxes,
  job: JobRecord,
  candidates: string[],
  timeoutMs: number,
): Promise<{ state?: VerifiedState; atCommitted?: VerifiedState; answers: string[] }> {
  const answers: string[] = [];
  const held = await Promise.all(
    candidates.map(async (id) => {
      try {
        const h = await queryState(inboxes, job, id, timeoutMs);
        answers.push(`${id}: ${h ? `step ${h.step} ${h.checksum.slice(0, 12)}` : 'holds nothing'}`);
        return h && { id, ...h };
      } catch (err) {
        answers.push(`${id}: ${(err as Error).message}`);
        return null;
      }
    }),
  );
  const usable = held.filter((h): h is NonNullable<typeof h> => !!h && h.step >= job.step && h.step <= job.step + 1);
  const agreed = (step: number): VerifiedState | undefined => {
    const at = usable.filter((h) => h.step === step);
    if (at.length === 0) return undefined;
    if (new Set(at.map((h) => h.checksum)).size !== 1) {
      answers.push(`holders of step ${step} disagree`);
      return undefined;
    }
    return { step, checksum: at[0]!.checksum, holders: at.map((h) => h.id) };
  };
  const ahead = agreed(job.step + 1);
  const atCommitted = agreed(job.step);
  const newest = usable.some((h) => h.step === job.step + 1) ? ahead : atCommitted;
  return { state: newest, atCommitted, answers };
}
