import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { InferenceError } from '../errors';
import type { OnnxThreadData, OnnxThreadReply, OnnxThreadRequest } from './onnx-thread-main';

const THREAD_MODULE = join(__dirname, 'onnx-thread-main.js');

/** Whether the thread's compiled module is here (sources run through tsx without a build have none). */
export const onnxThreadAvailable = (): boolean => existsSync(THREAD_MODULE);

/**
 * One ONNX Runtime session on a thread of its own. Batches are queued on the thread's port and run
 * one at a time (ORT parallelises inside a batch with `threads` threads); the pixels are transferred,
 * not copied. The thread is unreferenced while idle, so it never keeps a process alive.
 */
export class OnnxThread {
  private next = 0;
  private readonly waiting = new Map<number, { ok: (e: Float32Array) => void; fail: (err: Error) => void }>();
  private failure: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly imageSize: number,
  ) {}

  static async start(model: Uint8Array, imageSize: number, threads: number): Promise<OnnxThread> {
    const worker = new Worker(THREAD_MODULE, { workerData: { model, threads } satisfies OnnxThreadData });
    const thread = new OnnxThread(worker, imageSize);
    await new Promise<void>((ready, fail) => {
      const first = (r: OnnxThreadReply) => {
        if (r.id !== -1) return;
        worker.off('message', first);
        if (r.ok) ready();
        else fail(new InferenceError(`ONNX Runtime cannot load the model: ${r.reason}`));
      };
      worker.on('message', first);
      worker.once('error', (err) => fail(new InferenceError(`the ONNX Runtime thread failed to start: ${err.message}`)));
      worker.once('exit', (code) => fail(new InferenceError(`the ONNX Runtime thread exited (code ${code}) while loading the model`)));
    });
    worker.on('message', (r: OnnxThreadReply) => thread.settle(r));
    worker.on('error', (err) => thread.failAll(new InferenceError(`the ONNX Runtime thread failed: ${err.message}`)));
    worker.on('exit', (code) => thread.failAll(new InferenceError(`the ONNX Runtime thread exited (code ${code})`)));
    worker.unref();
    return thread;
  }

  /** Images [count, S, S, 3] in [-1, 1], row-major -> embeddings [count, D]. `pixels` is transferred (unusable after). */
  run(pixels: Float32Array, count: number): Promise<Float32Array> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    return new Promise((ok, fail) => {
      this.waiting.set(id, { ok, fail });
      if (this.waiting.size === 1) this.worker.ref();
      const own = pixels.byteOffset === 0 && pixels.byteLength === pixels.buffer.byteLength ? pixels : pixels.slice();
      this.worker.postMessage({ id, pixels: own, count, size: this.imageSize } satisfies OnnxThreadRequest, [own.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    this.failure ??= new InferenceError('the ONNX Runtime session was closed');
    await this.worker.terminate();
  }

  private settle(r: OnnxThreadReply): void {
    const waiter = this.waiting.get(r.id);
    if (!waiter) return;
    this.waiting.delete(r.id);
    if (this.waiting.size === 0) this.worker.unref();
    if (r.ok && 'embeddings' in r) waiter.ok(r.embeddings);
    else waiter.fail(new InferenceError(`ONNX Runtime failed on a batch: ${r.ok ? 'no output' : r.reason}`));
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    for (const [, w] of this.waiting) w.fail(err);
    this.waiting.clear();
  }
}
