import Fastify from 'fastify';

export interface MetricsServerOptions {
  host: string;
  /** 0: any free port (the bound address is returned). */
  port: number;
  /** The Prometheus exposition text and its content type (a prom-client registry's). */
  metrics: () => Promise<string>;
  contentType: string;
  /** Liveness/readiness: ok false answers 503 with the reason (a worker is ready once registered). */
  health: () => { ok: boolean; [detail: string]: unknown };
}

/**
 * The /metrics and /healthz endpoints of a worker, the miner or the evaluator (the coordinator
 * serves them from its API). Fastify, as the coordinator's API, rather than a hand-rolled server.
 */
export async function serveMetrics(o: MetricsServerOptions): Promise<{ address: string; close: () => Promise<void> }> {
  const app = Fastify({ logger: false });
  app.get('/metrics', async (_req, reply) => reply.type(o.contentType).send(await o.metrics()));
  app.get('/healthz', async (_req, reply) => {
    const h = o.health();
    return reply.code(h.ok ? 200 : 503).send(h);
  });
  await app.listen({ host: o.host, port: o.port });
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : o.port;
  return { address: `${o.host}:${port}`, close: () => app.close() };
}
