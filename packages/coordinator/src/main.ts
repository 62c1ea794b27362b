#!/usr/bin/env node
/** Coordinator process entry: `node packages/coordinator/dist/main.js` (configured by environment). */
import { Coordinator } from './coordinator';

const env = process.env;
const coordinator = new Coordinator({
  redisUrl: env.REDIS_URL,
  prefix: env.FACENET_PREFIX,
  host: env.FACENET_API_HOST,
  port: env.FACENET_API_PORT ? Number(env.FACENET_API_PORT) : undefined,
  checkpointRoot: env.FACENET_CHECKPOINT_ROOT,
  stepTimeoutMs: env.FACENET_STEP_TIMEOUT_MS ? Number(env.FACENET_STEP_TIMEOUT_MS) : undefined,
});

let signals = 0;
const shutdown = (signal: string) => {
  if (++signals > 1) process.exit(130);
  console.error(`[coordinator] ${signal}: shutting down`);
  coordinator.close().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));

coordinator.start().then(
  (url) => {
    // `facenet up` reads this line to learn the API address.
    process.stdout.write(`${JSON.stringify({ event: 'ready', url })}\n`);
  },
  (err: Error) => {
    console.error(`[coordinator] cannot start: ${err.message}`);
    process.exit(1);
  },
);
