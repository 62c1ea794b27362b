#!/usr/bin/env node
/** Coordinator process entry: `node packages/coordinator/dist/main.js` (configured by environment). */
import { envNumber, runService } from '@facenet/service-kit';
import { Coordinator } from './coordinator';

const env = process.env;
const FATAL_503_MS = 2000;
const CLOSE_DEADLINE_MS = 5000;
const coordinator = new Coordinator(
  {
    redisUrl: env.REDIS_URL,
    prefix: env.FACENET_PREFIX,
    host: env.FACENET_API_HOST,
    port: envNumber('FACENET_API_PORT'),
    checkpointRoot: env.FACENET_CHECKPOINT_ROOT,
    reportRoot: env.FACENET_REPORT_ROOT,
    stepTimeoutMs: envNumber('FACENET_STEP_TIMEOUT_MS'),
    admissionTimeoutMs: envNumber('FACENET_ADMISSION_TIMEOUT_MS'),
    admissionAnswerMs: envNumber('FACENET_ADMISSION_ANSWER_MS'),
    keepFinishedJobs: envNumber('FACENET_KEEP_FINISHED_JOBS'),
    finishedJobDays: envNumber('FACENET_FINISHED_JOB_DAYS'),
    assumedWorkerBudget: env.FACENET_ASSUMED_WORKER_MEMORY_MB
      ? {
          memoryBytes: (envNumber('FACENET_ASSUMED_WORKER_MEMORY_MB') as number) * 2 ** 20,
          gflops: envNumber('FACENET_ASSUMED_WORKER_GFLOPS') ?? 5,
        }
      : undefined,
    faultSettleMs: envNumber('FACENET_FAULT_SETTLE_MS'),
    lateWorkerGraceMs: envNumber('FACENET_LATE_WORKER_GRACE_MS'),
    apiTokensFile: env.FACENET_API_TOKENS_FILE,
    allowOpenApi: env.FACENET_API_OPEN === '1',
  },
  undefined,
  () => {
    // Its state is gone or another coordinator drives: leave with code 3 within seconds, so a
    // supervisor restarts it against sound state. /healthz answers 503 with the reason for the
    // first FATAL_503_MS (probes and people see why); close() then gets CLOSE_DEADLINE_MS, since
    // waits on a Redis that lost its queues may never end.
    setTimeout(() => process.exit(3), FATAL_503_MS + CLOSE_DEADLINE_MS).unref();
    setTimeout(() => void coordinator.close().finally(() => process.exit(3)), FATAL_503_MS);
  },
);

// `facenet up` reads the ready line to learn the API address.
runService('coordinator', coordinator, (url) => process.stdout.write(`${JSON.stringify({ event: 'ready', url })}\n`));
