/**
 * One export, off the coordinator's event loop (export-route.ts starts a thread per request):
 * loading a checkpoint and reading its weights out of tfjs takes from tens of ms (tiny) to a second.
 * The cpu backend: this thread lives for one model, and wasm's start-up would cost more than it saves.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ExportFormat, exportModel, loadModel, selectBackend } from '@facenet/core';

const { checkpointDir, format, outDir } = workerData as { checkpointDir: string; format: ExportFormat; outDir: string };

async function run() {
  await selectBackend({ backend: 'cpu', log: null });
  const { model, manifest } = await loadModel(checkpointDir);
  try {
    return await exportModel(model, manifest, format, outDir);
  } finally {
    model.dispose();
  }
}

run().then(
  (value) => parentPort?.postMessage({ ok: true, value }),
  (err: Error) => parentPort?.postMessage({ ok: false, error: err.message }),
);
