// @facenet/service-kit: the runtime every service shares, on top of the contract (@facenet/protocol):
// process plumbing (signals, environment, Redis connections), the /metrics and /healthz server,
// the checkpoint-event consumer the miner and evaluator are built on, and the Redis store of
// dataset indexes, and the work inboxes coordinator and workers hand steps over.
export {
  envNumber,
  runService,
  runCloseSteps,
  logRedisErrors,
  logThrottled,
  deleteKeysUnder,
  redactUrl,
  connectRedis,
} from './service-runtime';
export { serveMetrics } from './metrics-server';
export type { MetricsServerOptions } from './metrics-server';
export { CheckpointConsumer } from './checkpoint-consumer';
export type { CheckpointConsumerOptions, ConsumerState } from './checkpoint-consumer';
export { compressIndex, DatasetIndexStore } from './dataset-index-store';

export { WorkInbox, inboxDepth, entryFields, INBOX_GROUP } from './work-inbox';
export type { InboxItem, InboxAnswer } from './work-inbox';
export { WorkDispatch } from './work-dispatch';
export { workKeyFromEnv, signItem, signatureProblem, sealMessage, unsealMessage } from './work-signing';
export { AbortChannel, ABORT_MAX_AGE_MS, readAbortMessage } from './abort-channel';
