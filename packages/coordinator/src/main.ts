#!/usr/bin/env node
/** Coordinator process entry: `node packages/coordinator/dist/main.js` (configured by environment). */
import { envNumber, runService } from '@facenet/protocol';
import { Coordinator } from './coordinator';

const env = process.env;
const coordinator = new Coordinator(
  {
    redisUrl: env.REDIS_URL,
    prefix: env.FACENET_PREFIX,
    host: env.FACENET_API_HOST,
    port: envNumber('FACENET_API_PORT'),
    checkpointRoot: env.FACENET_CHECKPOINT_ROOT,
    reportRoot: env.FACENET_REPORT_ROOT,
    stepTimeoutMs: envNumber('FACENET_STEP_TIMEOUT_MS'),
    faultSettleMs: envNumber('FACENET_FAULT_SETTLE_MS'),
    apiTokensFile: env.FACENET_API_TOKENS_FILE,
    allowOpenApi: env.FACENET_API_OPEN === '1',
  },
  undefined,
  () => {
    // Its state is gone or another coordinator drives: leave (non-zero, so a supervisor notices).
    void coordinator.close().finally(() => process.exit(3));
  },
);

// `facenet up` reads the ready line to learn the API address.
runService('coordinator', coordinator, (url) => process.stdout.write(`${JSON.stringify({ event: 'ready', url })}\n`));
