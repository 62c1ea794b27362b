import { FastifyInstance } from 'fastify';
import { SpecError } from '@facenet/core';
import { sweepSpecSchema } from '@facenet/protocol';
import { CoordinatorError } from '../errors';
import { JobStore } from '../job-store';
import { newSweepRecord, SweepRunner, sweepView } from '../sweeps/sweep-runner';
import { SweepStore } from '../sweeps/sweep-store';
import { callerOf, mayUseQueue } from './access';

export interface SweepRouteDeps {
  sweeps: SweepStore;
  runner: SweepRunner;
  store: JobStore;
  queues: string[];
}

/**
 * Sweeps: POST /v1/sweeps (a base job spec, parameters, search, objective, budget, early stopping),
 * GET /v1/sweeps, GET /v1/sweeps/:id (trials, leaderboard, best checkpoint), POST /v1/sweeps/:id/cancel.
 * A sweep runs in its base spec's queue; a team token sees and steers the sweeps of its queues only.
 */
export function registerSweepRoutes(app: FastifyInstance, d: SweepRouteDeps): void {
  const queueOf = (base: Record<string, unknown>) => (typeof base.queue === 'string' ? base.queue : 'default');
  const visible = async (req: Parameters<typeof callerOf>[0], id: string) => {
    const s = await d.sweeps.get(id);
    if (!mayUseQueue(callerOf(req), queueOf(s.spec.base))) throw new CoordinatorError(`no sweep '${id}'`, 404);
    return s;
  };
  app.post('/v1/sweeps', async (req, reply) => {
    const r = sweepSpecSchema.safeParse(req.body ?? {});
    if (!r.success) throw new SpecError(r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message })));
    const queue = queueOf(r.data.base);
    if (!d.queues.includes(queue))
      throw new SpecError([{ path: 'base.queue', message: `no queue "${queue}" (this cluster has ${d.queues.join(', ')})` }]);
    if (!mayUseQueue(callerOf(req), queue)) throw new CoordinatorError(`base.queue: this token may not submit to "${queue}"`, 403);
    const s = newSweepRecord(r.data);
    await d.sweeps.create(s);
    return reply.code(201).send(await sweepView(s, d.store));
  });
  app.get('/v1/sweeps', async (req) => {
    const all = await d.sweeps.list(200);
    const mine = all.filter((s) => mayUseQueue(callerOf(req), queueOf(s.spec.base)));
    return Promise.all(mine.map((s) => sweepView(s, d.store)));
  });
  app.get<{ Params: { id: string } }>('/v1/sweeps/:id', async (req) => sweepView(await visible(req, req.params.id), d.store));
  app.post<{ Params: { id: string } }>('/v1/sweeps/:id/cancel', async (req) => {
    await visible(req, req.params.id);
    return sweepView(await d.runner.cancelSweep(req.params.id), d.store);
  });
}
