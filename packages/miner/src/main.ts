#!/usr/bin/env node
/** Miner process entry: `node packages/miner/dist/main.js` (configured by environment). */
import { selectBackend } from '@facenet/core';
import { envNumber, runService } from '@facenet/service-kit';
import { MinerService } from './miner-service';

void selectBackend().then(() =>
  runService(
    'miner',
    new MinerService({
      redisUrl: process.env.REDIS_URL,
      prefix: process.env.FACENET_PREFIX,
      metricsHost: process.env.FACENET_METRICS_HOST,
      metricsPort: envNumber('FACENET_METRICS_PORT'),
    }),
  ),
);
