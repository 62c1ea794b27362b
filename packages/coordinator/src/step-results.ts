import type { FaultKind, JobRecord, ShardJobResult } from '@facenet/protocol';
import { Membership } from './membership';
import { PlannedStep } from './step-ledger';
import { SentItem, WorkerInboxes } from './worker-inboxes';

/** A step that did not commit; `done` fills with the ranks' results as they arrive, even after the fault. */
export class StepFault extends Error {
  constructor(
    message: string,
    readonly kind: FaultKind,
    readonly done: ShardJobResult[] = [],
    readonly step?: PlannedStep,
    readonly stepMs = 0,
    readonly errorClass?: string,
  ) {
    super(message);
  }
}

/** The fault a worker's error stands for, by its class (decoded from the failure's envelope). */
function faultKindOf(err: Error): FaultKind {
  if (err.name === 'StorageError') return 'storage';
  if (err.name === 'RejectedJobError') return 'rejected';
  return 'step-failed';
}

export interface StepResultsDeps {
  inboxes: WorkerInboxes;
  membership: Membership;
  stepTimeoutMs: number;
  /** How long a member whose heartbeat lapsed but whose process answers is waited for before it counts as lost. */
  lateWorkerGraceMs: number;
}

/**
 * Every rank's answer to the step's shard jobs, or a StepFault: the first rank that fails or times
 * out, or a member confirmed lost meanwhile (heartbeats watched every second). `done` collects
 * the answers that arrived, for the fault's recovery.
 */
export async function awaitStepResults(
  d: StepResultsDeps,
  job: JobRecord,
  items: SentItem[],
  done: ShardJobResult[],
  planned: PlannedStep,
): Promise<ShardJobResult[]> {
  const ids = job.world.map((w) => w.workerId);
  let watching = true;
  const watch = (async () => {
    while (watching) {
      await new Promise((r) => setTimeout(r, 1000));
      const lapsed = watching ? await d.membership.lapsed(ids) : [];
      // A late heartbeat is not a death: confirmed lost only if its process is gone or stays silent.
      const lost = lapsed.length ? await d.membership.confirmLost(lapsed, d.lateWorkerGraceMs) : [];
      if (watching && lost.length)
        throw new StepFault(`worker(s) ${lost.join(', ')} of the ring stopped heartbeating`, 'worker-lost', done, planned);
    }
    return [] as ShardJobResult[];
  })();
  try {
    const all = Promise.all(
      items.map(async (j, r) => {
        try {
          const res = (await d.inboxes.result(j, d.stepTimeoutMs)) as ShardJobResult;
          done.push(res);
          return res;
        } catch (err) {
          const e = err as Error;
          throw new StepFault(`rank ${r} (${ids[r]}): ${e.message}`, faultKindOf(e), done, planned, 0, e.name);
        }
      }),
    );
    return await Promise.race([all, watch]);
  } finally {
    watching = false;
    watch.catch(() => undefined);
  }
}
