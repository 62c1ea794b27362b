/** The admission thread: checks one spec's data at a time for the coordinator (admission.ts). */
import { parentPort } from 'node:worker_threads';
import type { TrainConfig } from '@facenet/core';
import type { JobSpec } from '@facenet/protocol';
import { checkData } from './admission';

parentPort?.on('message', (req: { id: number; spec: JobSpec; train: TrainConfig | undefined; deadlineMs: number }) => {
  const onProgress = (images: number) => parentPort?.postMessage({ id: req.id, progress: images });
  checkData(req.spec, req.train, { deadlineMs: req.deadlineMs, onProgress }).then(
    // The stored index moves to the main thread, not copied.
    (value) => parentPort?.postMessage({ id: req.id, ok: true, value }, value.index ? [value.index.stored.buffer as ArrayBuffer] : []),
    (err: Error) => parentPort?.postMessage({ id: req.id, ok: false, error: err.message }),
  );
});
