import { FastifyInstance, FastifyRequest } from 'fastify';
import type { JobRecord } from '@facenet/protocol';
import { CoordinatorError, JobNotFoundError } from '../errors';
import { callerOf, mayUseQueue } from './access';

/**
 * Team tokens see and steer their queues' jobs only. Every route under /v1/jobs/:id answers a
 * job of another queue as it answers a job that does not exist (404: its existence is not
 * revealed), and a team submits to its own queues only. Lists are filtered where they are built
 * (GET /v1/jobs, /v1/workers): see `visibleTo`.
 */
export function registerTenancy(app: FastifyInstance, job: (id: string) => Promise<JobRecord>): void {
  app.addHook('preHandler', async (req: FastifyRequest) => {
    const caller = callerOf(req);
    if (caller.kind !== 'team') return;
    const path = req.url.split('?')[0] as string;
    const id = (req.params as { id?: unknown } | undefined)?.id;
    if (typeof id === 'string' && path.startsWith('/v1/jobs/')) {
      if (!mayUseQueue(caller, (await job(id)).spec.queue)) throw new JobNotFoundError(id);
    }
    if (req.method === 'POST' && path === '/v1/jobs') {
      const queue = (req.body as { queue?: unknown } | null)?.queue ?? 'default';
      if (typeof queue === 'string' && !mayUseQueue(caller, queue))
        throw new CoordinatorError(`queue: this token submits to ${caller.queues.join(', ')} only, not "${queue}"`, 403);
    }
  });
}

/** Whether the request's caller may see `job` (for lists). */
export const visibleTo = (req: FastifyRequest, job: JobRecord): boolean => mayUseQueue(callerOf(req), job.spec.queue);
