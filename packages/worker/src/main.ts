#!/usr/bin/env node
/** Worker process entry: `node packages/worker/dist/main.js` (configured by environment). */
import { WorkerService } from './worker-service';

const env = process.env;
const service = new WorkerService({
  redisUrl: env.REDIS_URL,
  prefix: env.FACENET_PREFIX,
  workerId: env.FACENET_WORKER_ID,
  host: env.FACENET_WORKER_HOST,
  port: env.FACENET_WORKER_PORT ? Number(env.FACENET_WORKER_PORT) : undefined,
  advertiseAddress: env.FACENET_WORKER_ADVERTISE,
  allreduceTimeoutMs: env.FACENET_ALLREDUCE_TIMEOUT_MS ? Number(env.FACENET_ALLREDUCE_TIMEOUT_MS) : undefined,
});

let signals = 0;
const shutdown = (signal: string) => {
  if (++signals > 1) process.exit(130);
  console.error(`[worker ${service.id}] ${signal}: draining (again to force)`);
  service.close().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));

service.start().catch((err: Error) => {
  console.error(`[worker] cannot start: ${err.message}`);
  process.exit(1);
});
