import { setTimeout as delay } from 'node:timers/promises';
import { SpecError } from '@facenet/core';
import type { JobRecord } from '@facenet/protocol';
import type { DatasetIndexStore } from '@facenet/service-kit';
import { transition } from '../job-lifecycle';
import type { JobStore } from '../job-store';
import type { DataVerdict } from './admission';
import { AdmissionDeps, CheckedSpec, checkSpec, finishAdmission } from './job-admission';

export interface BackgroundAdmissionDeps extends AdmissionDeps {
  store: JobStore;
  indexes: DatasetIndexStore;
  /** How long POST waits for the data's verdict before it answers 202 with the job `admitting`. */
  answerMs: number;
  /** The admission thread's budget for one dataset (FACENET_ADMISSION_TIMEOUT_MS). */
  budgetMs: number;
  log: (line: string) => void;
  /** A new job record, pending, for an admitted spec (routes.ts). */
  newJob: (spec: CheckedSpec['spec'], train: NonNullable<CheckedSpec['train']>) => JobRecord;
}

/** Stores a new job with its dataset index (the index first: a job never names one that is not stored). */
export async function storeNewJob(
  job: JobRecord,
  index: DataVerdict['index'],
  d: { store: JobStore; indexes: DatasetIndexStore },
): Promise<void> {
  if (index) {
    await d.indexes.put(index.ref.id, index.stored, job.id);
    job.dataIndex = index.ref;
  }
  await d.store.create(job);
}

/** How often an admitting job's record shows the images indexed so far. */
const PROGRESS_EVERY_MS = 2000;

/**
 * Admission without a deadline on the request. POST checks the spec at once; the dataset is read
 * in the admission thread. A verdict within `answerMs` answers as before (201, or 400 naming the
 * fields); a longer one answers 202 with the job `admitting`, its progress (images indexed) in the
 * job view, and the verdict later moves it to `pending` or to `failed` with the reasons. A
 * coordinator that stops mid-admission restarts the admission of its `admitting` jobs (resume).
 */
export class BackgroundAdmission {
  private closing = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly d: BackgroundAdmissionDeps) {}

  /** Admits and stores a job: 201 with it pending (or SpecError), or 202 with it admitting. */
  async submit(body: unknown): Promise<{ job: JobRecord; status: 201 | 202 }> {
    const checked = checkSpec(body, this.d);
    if (!checked.readsData || checked.issues.length > 0 || !checked.train) {
      const data = checked.readsData ? await this.d.admission.check(checked.spec, checked.train) : undefined;
      return { job: await this.store(await finishAdmission(checked, data, this.d)), status: 201 };
    }
    const progress = { images: 0 };
    const data = this.d.admission.check(checked.spec, checked.train, (n) => (progress.images = n));
    const early = await Promise.race([data.then((verdict) => ({ verdict })), delay(this.d.answerMs).then(() => undefined)]);
    if (early) return { job: await this.store(await finishAdmission(checked, early.verdict, this.d)), status: 201 };
    const job = this.d.newJob(checked.spec, checked.train);
    job.state = 'admitting';
    job.admission = { startedAt: new Date().toISOString(), images: 0, budgetMs: this.d.budgetMs };
    await this.d.store.create(job);
    this.d.log(`[coordinator] job ${job.id}: admitting (its dataset is still being indexed; POST answered 202)`);
    this.follow(job.id, checked, data, progress);
    return { job, status: 202 };
  }

  /** Restarts the admission of jobs a stopped coordinator left `admitting`; returns how many. */
  async resume(): Promise<number> {
    const jobs = await this.d.store.inStates(['admitting']);
    for (const job of jobs) {
      let checked: CheckedSpec;
      try {
        checked = checkSpec(job.spec, this.d);
      } catch (err) {
        await this.fail(job.id, err);
        continue;
      }
      const progress = { images: 0 };
      this.d.log(`[coordinator] job ${job.id}: admission restarted (the coordinator stopped during it)`);
      this.follow(
        job.id,
        checked,
        this.d.admission.check(checked.spec, checked.train, (n) => (progress.images = n)),
        progress,
      );
    }
    return jobs.length;
  }

  /** Stops recording verdicts (the coordinator is closing; the next one resumes these jobs). */
  close(): void {
    this.closing = true;
  }

  private async store(a: Awaited<ReturnType<typeof finishAdmission>>): Promise<JobRecord> {
    const job = this.d.newJob(a.spec, a.train);
    await storeNewJob(job, a.index, this.d);
    return job;
  }

  private follow(id: string, checked: CheckedSpec, data: Promise<DataVerdict>, progress: { images: number }): void {
    let shown = 0;
    const timer = setInterval(() => {
      if (progress.images === shown || this.closing) return;
      shown = progress.images;
      void this.d.store
        .update(id, (j) => {
          if (j.state === 'admitting' && j.admission) j.admission.images = shown;
        })
        .catch(() => undefined);
    }, PROGRESS_EVERY_MS);
    const done = data
      .then((verdict) => finishAdmission(checked, verdict, this.d))
      .then(
        (a) => this.admit(id, a),
        (err) => this.fail(id, err),
      )
      .catch((err: Error) => this.d.log(`[coordinator] job ${id}: admission result not recorded: ${err.message}`))
      .finally(() => {
        clearInterval(timer);
        this.inFlight.delete(done);
      });
    this.inFlight.add(done);
  }

  private async admit(id: string, a: Awaited<ReturnType<typeof finishAdmission>>): Promise<void> {
    if (this.closing) return;
    if (a.index) await this.d.indexes.put(a.index.ref.id, a.index.stored, id);
    const job = await this.d.store.update(id, (j) => {
      if (j.state !== 'admitting') return; // cancelled meanwhile
      if (a.index) j.dataIndex = a.index.ref;
      j.train = a.train;
      transition(j, 'admit');
    });
    if (job.state !== 'pending') {
      if (a.index) await this.d.indexes.release(a.index.ref.id, id);
      this.d.log(`[coordinator] job ${id}: indexing ended after the job was ${job.state}; its index is not kept`);
      return;
    }
    this.d.log(`[coordinator] job ${id}: admitted${a.index ? ` (${a.index.ref.images} images indexed)` : ''}; pending`);
  }

  private async fail(id: string, err: unknown): Promise<void> {
    if (this.closing) return;
    const why =
      err instanceof SpecError ? err.issues.map((i) => `${i.path}: ${i.message}`).join('; ') : ((err as Error).message ?? String(err));
    await this.d.store.update(id, (j) => {
      if (j.state === 'admitting') transition(j, 'fail', `admission refused: ${why}`);
    });
    this.d.log(`[coordinator] job ${id}: admission refused: ${why}`);
  }
}
