/**
 * The body of an ONNX Runtime thread (see onnx-thread.ts). onnxruntime-node runs a session
 * synchronously on the calling thread, so the session lives here, where a batch of a few
 * hundred milliseconds cannot hold a service's event loop (its health checks, its heartbeats).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type * as Ort from 'onnxruntime-node';

export interface OnnxThreadData {
  model: Uint8Array;
  threads: number;
}
export type OnnxThreadRequest = { id: number; pixels: Float32Array; count: number; size: number };
export type OnnxThreadReply =
  | { id: number; ok: true; embeddings: Float32Array }
  | { id: number; ok: false; reason: string }
  | { id: -1; ok: true; ready: { inputs: readonly string[]; outputs: readonly string[] } }
  | { id: -1; ok: false; reason: string };

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) return;
  const { model, threads } = workerData as OnnxThreadData;
  let ort: typeof Ort;
  let session: Ort.InferenceSession;
  try {
    ort = await import('onnxruntime-node');
    session = await ort.InferenceSession.create(model, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Threads that spin between kernels steal cores from a training worker on the same host.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  } catch (err) {
    port.postMessage({ id: -1, ok: false, reason: (err as Error).message } satisfies OnnxThreadReply);
    return;
  }
  const input = session.inputNames[0] as string;
  const output = session.outputNames[0] as string;
  port.postMessage({ id: -1, ok: true, ready: { inputs: session.inputNames, outputs: session.outputNames } } satisfies OnnxThreadReply);
  const embed = async (r: OnnxThreadRequest): Promise<void> => {
    try {
      const feeds = { [input]: new ort.Tensor('float32', r.pixels, [r.count, r.size, r.size, 3]) };
      const result = await session.run(feeds);
      const data = result[output]?.data as Float32Array;
      const embeddings = new Float32Array(data); // a copy of our own to transfer
      port.postMessage({ id: r.id, ok: true, embeddings } satisfies OnnxThreadReply, [embeddings.buffer]);
    } catch (err) {
      port.postMessage({ id: r.id, ok: false, reason: (err as Error).message } satisfies OnnxThreadReply);
    }
  };
  port.on('message', (r: OnnxThreadRequest) => void embed(r));
}

void main();
