import { Worker } from 'node:worker_threads';
import { ErrorEnvelope, fromEnvelope } from '@facenet/core';
import { ComputeThreadError, InterruptedError } from '../errors';

/** A thread's reply to one request (the thread side is threads/serve-requests.ts). */
export type ThreadReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: ErrorEnvelope };

/**
 * The main thread's handle on a worker thread: typed request/reply over postMessage, errors
 * rebuilt in their own class. `interrupt` stops whatever the thread is doing by terminating it (a
 * step's compute or an image being drawn cannot be stopped from outside any other way); the next
 * request starts a fresh thread. A thread that crashes on its own fails every later request:
 * the worker is broken, not interrupted.
 */
export class ThreadClient {
  private thread: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private crashed: Error | undefined;

  constructor(
    private readonly file: string,
    private readonly what: string,
  ) {}

  private spawn(): Worker {
    const t = new Worker(this.file);
    t.on('message', (r: ThreadReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(fromEnvelope(r.error));
    });
    const fail = (err: Error) => {
      if (this.thread !== t) return; // an interrupted thread's exit is expected
      this.crashed = err;
      this.rejectAll(err);
    };
    t.on('error', (err) => fail(new ComputeThreadError(`${this.what} thread crashed: ${err.message}`)));
    t.on('exit', (code) => fail(new ComputeThreadError(`${this.what} thread exited (${code})`)));
    return t;
  }

  private rejectAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  call<T>(type: string, body: object, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.crashed) return Promise.reject(this.crashed);
    this.thread ??= this.spawn();
    const id = this.nextId++;
    const thread = this.thread;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      thread.postMessage({ id, type, ...body }, transfer);
    });
  }

  /** Whether a request is in flight. */
  get busy(): boolean {
    return this.pending.size > 0;
  }

  /** Stops the thread mid-request: what is pending fails with InterruptedError; state it held is gone. */
  async interrupt(reason: string): Promise<void> {
    const t = this.thread;
    this.thread = undefined;
    this.rejectAll(new InterruptedError(`${this.what} interrupted: ${reason}`));
    if (t) await t.terminate();
  }

  async close(): Promise<void> {
    const t = this.thread;
    this.thread = undefined;
    if (t) await t.terminate();
  }
}
