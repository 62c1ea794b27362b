#!/usr/bin/env node
/** Evaluator process entry: `node packages/evaluator/dist/main.js` (configured by environment). */
import { selectBackend } from '@facenet/core';
import { envNumber, runService } from '@facenet/service-kit';
import { EvaluatorService } from './evaluator-service';

void selectBackend().then(() =>
  runService(
    'evaluator',
    new EvaluatorService({
      redisUrl: process.env.REDIS_URL,
      prefix: process.env.FACENET_PREFIX,
      metricsHost: process.env.FACENET_METRICS_HOST,
      metricsPort: envNumber('FACENET_METRICS_PORT'),
      reportRoot: process.env.FACENET_REPORT_ROOT,
    }),
  ),
);
