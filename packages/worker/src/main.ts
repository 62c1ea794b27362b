#!/usr/bin/env node
/** Worker process entry: `node packages/worker/dist/main.js` (configured by environment). */
import { envNumber, runService } from '@facenet/service-kit';
import { WorkerService } from './worker-service';

const env = process.env;
runService(
  'worker',
  new WorkerService({
    redisUrl: env.REDIS_URL,
    prefix: env.FACENET_PREFIX,
    workerId: env.FACENET_WORKER_ID,
    metricsHost: env.FACENET_METRICS_HOST,
    metricsPort: envNumber('FACENET_METRICS_PORT'),
    checkpointRoot: env.FACENET_CHECKPOINT_ROOT,
    heartbeatMs: envNumber('FACENET_HEARTBEAT_MS'),
    faultNonFiniteAtStep: envNumber('FACENET_FAULT_NON_FINITE_AT_STEP'),
    faultExitAfterApplyAtStep: envNumber('FACENET_FAULT_EXIT_AFTER_APPLY_AT_STEP'),
    memoryBudgetBytes: env.FACENET_WORKER_MEMORY_MB ? (envNumber('FACENET_WORKER_MEMORY_MB') as number) * 2 ** 20 : undefined,
    gflops: envNumber('FACENET_WORKER_GFLOPS'),
    prefetch: env.FACENET_WORKER_PREFETCH === undefined ? undefined : env.FACENET_WORKER_PREFETCH !== '0',
    allreduce: {
      host: env.FACENET_WORKER_HOST,
      port: envNumber('FACENET_WORKER_PORT'),
      advertiseAddress: env.FACENET_WORKER_ADVERTISE,
      transport: env.FACENET_ALLREDUCE_TRANSPORT as 'tcp' | 'grpc' | undefined,
      dataPort: envNumber('FACENET_WORKER_DATA_PORT'),
      timeoutMs: envNumber('FACENET_ALLREDUCE_TIMEOUT_MS'),
      tls:
        env.FACENET_TLS_CERT || env.FACENET_TLS_KEY || env.FACENET_TLS_CA
          ? { ca: env.FACENET_TLS_CA ?? '', cert: env.FACENET_TLS_CERT ?? '', key: env.FACENET_TLS_KEY ?? '' }
          : undefined,
    },
  }),
);
