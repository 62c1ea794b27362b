import { join, resolve } from 'node:path';
import { compileTrainOptions, FacenetError, stepFootprint, TrainConfig } from '@facenet/core';
import {
  allowedLocation,
  ALLREDUCE_ALGORITHMS,
  datasetKind,
  datasetSchema,
  doublingSources,
  insideRoots,
  isStateQuery,
  OUTSIDE_ROOTS,
  RingPlace,
  WorkerBudget,
  WorkerJobData,
} from '@facenet/protocol';

/** A queued job that failed validation: failed as unrecoverable, never executed. */
/** host:port (or [v6]:port) of a rank, as the coordinator names ranks in shard jobs. */
const ADDRESS = /^[\w.:[\]-]{1,300}:\d{1,5}$/;

export class RejectedJobError extends FacenetError {}

export interface JobGuardOptions {
  /** Folders datasets may live in. */
  dataRoots: readonly string[];
  /** The only folder checkpoints are read from and written to. */
  checkpointRoot: string;
  /** What a step may cost here (none: not checked). */
  budget?: WorkerBudget;
}

/**
 * Checks an item taken from this worker's inbox before anything runs: Redis is a trust boundary
 * too (anyone who can write to it can queue jobs), so paths must stay inside the data roots and
 * the checkpoint root, and sizes within the limits a job spec allows.
 */
export function checkWorkerJob(d: WorkerJobData, o: JobGuardOptions): void {
  if (!d || typeof d !== 'object' || Array.isArray(d)) throw new RejectedJobError('refused job: not a JSON object');
  const reject = (why: string): never => {
    throw new RejectedJobError(`refused job for ${String(d.jobId)}: ${why}`);
  };
  const inCheckpoints = (what: string, dir: string | null | undefined) => {
    if (dir !== null && dir !== undefined && typeof dir !== 'string') reject(`${what} is not a path`);
    if (dir !== null && dir !== undefined && !insideRoots(dir, [o.checkpointRoot]))
      reject(`${what} ${dir} is outside the checkpoint root ${o.checkpointRoot}`);
  };
  if (typeof d.jobId !== 'string' || !/^[A-Za-z0-9._-]{1,200}$/.test(d.jobId)) reject('malformed job id');
  // Writes go only to the job's own folder, derived from its id, whatever the payload names: a
  // forged job must not write weights into another job's checkpoints.
  const own = join(o.checkpointRoot, d.jobId);
  const ownFolder = (what: string, dir: string | undefined, exact: boolean) => {
    if (dir === undefined) return;
    if (typeof dir !== 'string') reject(`${what} is not a path`);
    if (exact ? resolve(dir) !== resolve(own) : !insideRoots(dir, [own])) reject(`${what} ${dir} is not this job's folder ${own}`);
  };
  if (isStateQuery(d)) return ownFolder('checkpointDir', d.checkpointDir, false);
  const dataset = datasetSchema.safeParse(d.dataset);
  if (!dataset.success) reject(`malformed dataset: ${dataset.error.issues[0]?.message ?? 'not a dataset spec'}`);
  else
    for (const f of datasetKind(dataset.data).files(dataset.data))
      if (!allowedLocation(f.value, o.dataRoots)) reject(`${f.path} ${f.value} ${OUTSIDE_ROOTS}`);
  if (d.dataIndex !== undefined && !/^[0-9a-f]{64}$/.test(d.dataIndex)) reject('malformed dataset index id');
  ownFolder('checkpointDir', d.checkpointDir, true);
  inCheckpoints('restoreFrom', d.restoreFrom);
  const ring = d.ring as Partial<RingPlace> | undefined;
  if (!ring || !Number.isInteger(ring.size) || (ring.size as number) < 1 || (ring.size as number) > 1024)
    reject('the ring must have 1-1024 ranks');
  if (typeof ring?.predecessor !== 'string' || !ADDRESS.test(ring.predecessor)) reject('malformed ring predecessor address');
  const partners = ring?.partners as unknown;
  if (partners !== undefined) {
    const expected = Number.isInteger(ring?.size) && Number.isInteger(d.rank) ? doublingSources(d.rank, ring?.size as number).length : -1;
    const ok =
      Array.isArray(partners) && partners.length === expected && partners.every((p: unknown) => typeof p === 'string' && ADDRESS.test(p));
    if (!ok) reject(`malformed doubling partners: ${expected} host:port addresses expected`);
  }
  if (d.algorithm !== undefined && !ALLREDUCE_ALGORITHMS.includes(d.algorithm))
    reject(`unknown allreduce algorithm ${String(d.algorithm)}`);
  if (!Number.isInteger(d.rank) || d.rank < 0 || d.rank >= (ring?.size as number))
    reject(`rank ${d.rank} is not in a ring of ${ring?.size}`);
  if (!Number.isInteger(d.step) || d.step < 0) reject(`bad step ${d.step}`);
  if (!d.train || typeof d.train !== 'object') reject('no train configuration');
  let train: TrainConfig | undefined;
  try {
    train = compileTrainOptions({ ...d.train, checkpointDir: undefined });
  } catch (err) {
    reject(`train configuration: ${(err as Error).message}`);
  }
  const batch = (train as TrainConfig).batch;
  const items = (shards: unknown) =>
    Array.isArray(shards) ? shards.reduce((n: number, s: unknown) => n + (Array.isArray(s) ? s.length : Infinity), 0) : Infinity;
  const limit = batch.P * batch.K + batch.singletonNegatives;
  if (items(d.shards) > limit || (d.prefetch && items(d.prefetch.shards) > limit)) reject(`more images than a batch of ${limit}`);
  if (o.budget) {
    // This rank's real share of the step, as the coordinator planned it.
    const shards = d.shards.map((s) => s.length);
    const need = stepFootprint(train as TrainConfig, { imagesOnRank: items(d.shards), imagesPerShard: Math.max(0, ...shards) }).memoryBytes;
    if (need > o.budget.memoryBytes)
      reject(
        `a step of ${items(d.shards)} images needs ~${(need / 2 ** 30).toFixed(1)} GiB; this worker's budget is ${(o.budget.memoryBytes / 2 ** 30).toFixed(1)} GiB`,
      );
  }
  if (!(d.learningRateScale > 0 && d.learningRateScale <= 1)) reject(`learningRateScale must be in (0, 1], got ${d.learningRateScale}`);
}
