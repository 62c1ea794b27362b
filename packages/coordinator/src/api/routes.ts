import { FastifyInstance, FastifyReply } from 'fastify';
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { FacenetError, MAX_STEPS, SpecError, TrainConfig } from '@facenet/core';
import { z } from 'zod';
import { queryInteger } from './query-integer';
import {
  bestEvaluation,
  JOB_STATES,
  WorkerBudget,
  EvaluationRecord,
  FINAL_STATES,
  JobRecord,
  JobSpec,
  jobView,
  PlanSummary,
} from '@facenet/protocol';
import { DatasetIndexStore } from '@facenet/service-kit';
import { CoordinatorError, JobStateError } from '../errors';
import { transition } from '../job-lifecycle';
import { HISTORY_CAP, JobStore } from '../job-store';
import { Membership } from '../membership';
import { openApiDocument } from './openapi';
import { registerPages } from './pages';
import { registerExportRoute } from './export-route';
import { registerTenancy, visibleTo } from './tenancy';
import { jobOrArchived } from './archived-jobs';
import { storeNewJob } from './background-admission';
import type { BackgroundAdmission } from './background-admission';
import type { JobArchive } from '../job-archive';
import { registerSweepRoutes } from './sweep-routes';
import { registerDocsPage } from './docs-page';
import { SweepRunner } from '../sweeps/sweep-runner';
import { SweepStore } from '../sweeps/sweep-store';
import { AdmissionClient } from './admission';
import { admitSpec } from './job-admission';

export interface RouteDeps {
  store: JobStore;
  membership: Membership;
  metrics: () => Promise<string>;
  metricsContentType: string;
  redisPing: () => Promise<unknown>;
  /** Why the coordinator stopped driving jobs (its Redis state or lock vanished), if it did. */
  fatal: () => string | undefined;
  /** The newest mining plan of a job, summarised (null: none yet). */
  newestPlan: (jobId: string) => Promise<PlanSummary | null>;
  /** The miner's and the evaluator's registrations (null: none alive). */
  miner: () => Promise<unknown>;
  evaluator: () => Promise<unknown>;
  /** Folders jobs may read data from. */
  dataRoots: string[];
  /** The evaluator's scores of a job's checkpoints, oldest first. */
  evaluations: (jobId: string) => Promise<EvaluationRecord[]>;
  /** The folder the evaluator writes checkpoint reports to ('' = none). */
  reportRoot: string;
  /** Checks a spec's data off the event loop. */
  admission: AdmissionClient;
  /** Where admitted jobs' packed dataset indexes are stored. */
  indexes: DatasetIndexStore;
  /** The budget a step must fit: the largest registered worker's, or the assumed one while none is. */
  workerBudget: () => Promise<WorkerBudget>;
  /** Steps not finished in this time are abandoned. */
  stepTimeoutMs: number;
  /** Tells a running job's workers to stop its step in flight (it was cancelled). */
  interrupt: (job: JobRecord) => Promise<void>;
  /** The queues jobs may name. */
  queues: string[];
  sweeps: SweepStore;
  runner: SweepRunner;
  /** Finished jobs past retention, read back from disk. */
  archive: JobArchive;
  /** Where checkpoints live (named by role, not path, in API errors). */
  checkpointRoot: string;
  /** Admits new jobs, indexing large datasets after POST has answered. */
  admissions: BackgroundAdmission;
  /** The queues as of the scheduler's last decision, and the job blocked at the head of the line. */
  queueStatus: () => { queues: unknown[]; blocked: string | null; preemptions: unknown[] };
}

const jobsQuery = z
  .object({
    limit: queryInteger.pipe(z.number().min(1).max(500)).default(50),
    state: z.enum(JOB_STATES).optional(),
    cursor: z
      .string()
      .regex(/^\d+:[A-Za-z0-9._-]+$/, 'a cursor from X-Next-Cursor')
      .optional(),
  })
  .strict();
const historyQuery = z
  .object({
    limit: queryInteger.pipe(z.number().min(1).max(HISTORY_CAP)).default(200),
    cursor: queryInteger.default(0),
  })
  .strict();
const resumeBody = z.object({ fromStep: z.number().int().min(0).optional() }).strict();
const forkBody = z
  .object({
    fromStep: z.number().int().min(0).optional(),
    steps: z.number().int().min(1).max(MAX_STEPS).optional(),
    name: z.string().max(200).optional(),
  })
  .strict();

/** A strict request body (an empty body is `{}`); a SpecError names each bad field. */
function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw new SpecError(r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message })));
  return r.data;
}

export function newJobRecord(
  spec: JobSpec,
  train: TrainConfig,
  from?: { jobId: string; step: number; dir: string; planSwitches: JobRecord['planSwitches'] },
): JobRecord {
  const now = new Date();
  const id = `job-${now.toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
  return {
    id,
    name: spec.name,
    spec,
    train,
    state: 'pending',
    step: from?.step ?? 0,
    generation: 0,
    world: [],
    restoreFrom: from?.dir ?? null,
    checkpoints: from ? [{ step: from.step, dir: from.dir, createdAt: now.toISOString() }] : [],
    recent: [],
    faults: [],
    forkedFrom: from && { jobId: from.jobId, step: from.step },
    planSwitches: from?.planSwitches.filter((p) => p.fromStep < from.step) ?? [],
    highWater: from?.step ?? 0,
    secretSeed: randomBytes(32).toString('hex'),
    createdAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
}

/**
 * Admits a job spec (SpecError naming each bad field) and stores the new job: pending (201), or
 * admitting (202) while a large dataset is indexed (background-admission.ts).
 */
export async function submitJob(body: unknown, d: RouteDeps): Promise<{ job: JobRecord; status: 201 | 202 }> {
  return d.admissions.submit(body);
}

/** Cancels a job: a pending or paused one at once, a running one at its step boundary, made now by an interrupt. */
export async function cancelJob(id: string, d: Pick<RouteDeps, 'store' | 'interrupt'>): Promise<{ job: JobRecord; requested: boolean }> {
  const job = await d.store.get(id);
  if (FINAL_STATES.includes(job.state)) throw new JobStateError(job.id, `is already ${job.state}`);
  if (job.state === 'running') {
    // The request is taken at the step boundary; the interrupt makes that boundary now, instead
    // of after a step that may compute for minutes.
    await d.store.request(job.id, 'cancel');
    await d.interrupt(job);
    return { job, requested: true };
  }
  return { job: await d.store.update(job.id, (j) => transition(j, 'cancel')), requested: false };
}

/**
 * Errors as API clients see them. Messages from deep inside (a checkpoint that cannot be read, an
 * export that failed) name files on the server; its own folders are shown by role, not by path,
 * so an error does not map the server's disks for whoever holds a token.
 */
function sendError(reply: FastifyReply, err: unknown, hide: (message: string) => string): FastifyReply {
  const error = (message: string) => hide(message);
  // A job or sweep spec, or a query's parameters: each issue names its field.
  if (err instanceof SpecError)
    return reply.code(400).send({ error: 'invalid request', issues: err.issues.map((i) => ({ ...i, message: error(i.message) })) });
  if (err instanceof CoordinatorError) return reply.code(err.status).send({ error: error(err.message) });
  if (err instanceof FacenetError) return reply.code(400).send({ error: error(err.message) });
  // Fastify's own client errors (malformed JSON 400, body too large 413, unsupported type 415).
  const status = (err as { statusCode?: number }).statusCode;
  if (status !== undefined && status >= 400 && status < 500) return reply.code(status).send({ error: error((err as Error).message) });
  return reply.code(500).send({ error: error((err as Error).message) });
}

/** Replaces the server's own folders (absolute, as resolved) in a message by their roles. */
export function hideServerFolders(folders: { path: string; role: string }[]): (message: string) => string {
  const known = folders
    .filter((f) => f.path)
    .map((f) => ({ path: resolve(f.path), role: f.role }))
    .sort((a, b) => b.path.length - a.path.length);
  return (message) => known.reduce((m, f) => m.split(f.path).join(f.role), message);
}

function checkpointAt(job: JobRecord, step: number | undefined) {
  const c = step === undefined ? job.checkpoints[job.checkpoints.length - 1] : job.checkpoints.find((x) => x.step === step);
  if (!c)
    throw new JobStateError(
      job.id,
      step === undefined
        ? 'has no checkpoint yet'
        : `has no checkpoint at step ${step} (have: ${job.checkpoints.map((x) => x.step).join(', ') || 'none'})`,
    );
  return c;
}

/** The REST API, versioned under /v1. */
export function registerRoutes(app: FastifyInstance, d: RouteDeps): void {
  registerSweepRoutes(app, d);
  const hide = hideServerFolders([
    { path: d.checkpointRoot, role: '<checkpoint root>' },
    { path: d.reportRoot, role: '<report root>' },
  ]);
  app.setErrorHandler((err, _req, reply) => sendError(reply, err, hide));
  app.get('/healthz', async (_req, reply) => {
    const fatal = d.fatal();
    if (fatal) return reply.code(503).send({ ok: false, error: fatal });
    return { ok: true, redis: await d.redisPing() };
  });
  app.get('/metrics', async (_req, reply) => reply.type(d.metricsContentType).send(await d.metrics()));
  app.get('/v1/openapi.json', async () => openApiDocument());
  const find = (id: string) => jobOrArchived(d.store, d.archive, id);
  registerTenancy(app, async (id) => (await find(id)).job);
  registerExportRoute(app, {
    job: async (id) => (await find(id)).job,
    evaluations: async (id) => (await find(id)).archived?.evaluations ?? d.evaluations(id),
  });
  registerDocsPage(app);
  // The status page (static files that read this API) and the evaluator's reports.
  registerPages(app, {
    evaluations: d.evaluations,
    jobExists: async (id) => void (await d.store.get(id)),
    reportRoot: d.reportRoot,
  });

  app.post('/v1/jobs', async (req, reply) => {
    const { job, status } = await submitJob(req.body ?? {}, d);
    return reply.code(status).send(jobView(job));
  });
  const view = async (j: JobRecord) => jobView(j, await d.store.peekRequest(j.id), await d.evaluations(j.id));
  // Paged, newest first: an array body (as before pages), the next page's cursor in X-Next-Cursor
  // and a Link header; none on the last page.
  app.get<{ Querystring: unknown }>('/v1/jobs', async (req, reply) => {
    const q = parseBody(jobsQuery, req.query);
    const page = await d.store.page(q);
    if (page.next) {
      const next = new URLSearchParams({ limit: String(q.limit), cursor: page.next, ...(q.state ? { state: q.state } : {}) });
      reply.header('x-next-cursor', page.next).header('link', `</v1/jobs?${next.toString()}>; rel="next"`);
    }
    // A team token's page holds its queues' jobs only (a page may come back shorter than `limit`).
    return Promise.all(page.jobs.filter((j) => visibleTo(req, j)).map(view));
  });
  app.get<{ Params: { id: string } }>('/v1/jobs/:id', async (req) => {
    const { job, archived } = await find(req.params.id);
    return archived ? { ...jobView(job, null, archived.evaluations), archivedAt: archived.archivedAt } : view(job);
  });
  app.get<{ Params: { id: string } }>('/v1/jobs/:id/plan', async (req) => {
    await d.store.get(req.params.id); // 404 for an unknown job
    return d.newestPlan(req.params.id);
  });
  app.get('/v1/miner', async () => d.miner());
  app.get('/v1/queues', async () => d.queueStatus());
  app.get('/v1/evaluator', async () => d.evaluator());
  // The newest `limit` steps, oldest first; X-Next-Cursor pages back to older ones.
  app.get<{ Params: { id: string }; Querystring: unknown }>('/v1/jobs/:id/history', async (req, reply) => {
    const q = parseBody(historyQuery, req.query);
    const { archived } = await find(req.params.id); // 404 for an unknown job
    const page = await (archived ? d.archive : d.store).history(req.params.id, { limit: q.limit, skip: q.cursor });
    if (page.next !== undefined)
      reply
        .header('x-next-cursor', String(page.next))
        .header('link', `</v1/jobs/${req.params.id}/history?limit=${q.limit}&cursor=${page.next}>; rel="next"`);
    return page.steps;
  });
  app.get<{ Params: { id: string } }>('/v1/jobs/:id/checkpoints', async (req) => {
    const { job, archived } = await find(req.params.id);
    const evals = archived?.evaluations ?? (await d.evaluations(job.id));
    const best = bestEvaluation(evals);
    return job.checkpoints.map((c) => {
      const e = evals.find((x) => x.step === c.step) ?? null;
      return { ...c, evaluation: e && { accuracy: e.accuracy, val: e.val, far: e.far, auc: e.auc }, best: best?.step === c.step };
    });
  });
  app.get<{ Params: { id: string } }>('/v1/jobs/:id/evaluations', async (req) => {
    const { archived } = await find(req.params.id); // 404 for an unknown job
    return archived?.evaluations ?? d.evaluations(req.params.id);
  });
  app.post<{ Params: { id: string } }>('/v1/jobs/:id/pause', async (req) => {
    const job = await d.store.get(req.params.id);
    if (job.state === 'pending') return jobView(await d.store.update(job.id, (j) => transition(j, 'pause')));
    if (job.state !== 'running') throw new JobStateError(job.id, `cannot pause a ${job.state} job`);
    await d.store.request(job.id, 'pause');
    return jobView(job, 'pause');
  });

  app.post<{ Params: { id: string } }>('/v1/jobs/:id/resume', async (req) => {
    const job = await d.store.get(req.params.id);
    const { fromStep } = parseBody(resumeBody, req.body);
    if (job.state === 'running' || job.state === 'pending') {
      if (fromStep === undefined && (await d.store.peekRequest(job.id)) === 'pause') await d.store.takeRequest(job.id);
      else if (fromStep !== undefined) throw new JobStateError(job.id, `pause it before resuming from step ${fromStep}`);
      return jobView(job);
    }
    if (job.state === 'cancelled' && fromStep === undefined)
      throw new JobStateError(job.id, 'is cancelled; resume it from a checkpoint (fromStep) or fork it');
    const ckpt = fromStep === undefined ? undefined : checkpointAt(job, fromStep);
    if (job.state === 'completed' && !ckpt) throw new JobStateError(job.id, 'is completed; give fromStep to rerun from a checkpoint');
    const updated = await d.store.update(job.id, (j) => {
      if (ckpt) {
        j.step = ckpt.step;
        j.restoreFrom = ckpt.dir;
        j.checkpoints = j.checkpoints.filter((c) => c.step <= ckpt.step);
        j.generation++; // ranks holding later weights must reload
      }
      transition(j, 'resume');
    });
    return jobView(updated);
  });

  app.post<{ Params: { id: string } }>('/v1/jobs/:id/cancel', async (req) => {
    const { job, requested } = await cancelJob(req.params.id, d);
    return jobView(job, requested ? 'cancel' : null);
  });

  app.post<{ Params: { id: string } }>('/v1/jobs/:id/fork', async (req, reply) => {
    const job = await d.store.get(req.params.id);
    const body = parseBody(forkBody, req.body);
    const ckpt = checkpointAt(job, body.fromStep);
    const spec = {
      ...job.spec,
      name: body.name ?? `${job.spec.name ?? job.id} (fork at ${ckpt.step})`,
      train: { ...job.spec.train, steps: body.steps ?? job.train.steps },
    };
    const v = await admitSpec(spec, d);
    if (v.train.steps <= ckpt.step) throw new SpecError([{ path: 'steps', message: `must exceed the checkpoint's step ${ckpt.step}` }]);
    const fork = newJobRecord(v.spec, v.train, { jobId: job.id, step: ckpt.step, dir: ckpt.dir, planSwitches: job.planSwitches });
    await storeNewJob(fork, v.index, d);
    return reply.code(201).send(jobView(fork));
  });

  app.get('/v1/workers', async (req) => {
    const [alive, jobs] = await Promise.all([d.membership.alive(), d.store.inStates(['running'])]);
    const jobOf = new Map(
      jobs
        .filter((j) => j.state === 'running' && visibleTo(req, j))
        .flatMap((j) => j.world.map((w, rank) => [w.workerId, { job: j.id, rank }] as const)),
    );
    return alive.map((w) => ({ ...w, assignment: jobOf.get(w.id) ?? null }));
  });
}
