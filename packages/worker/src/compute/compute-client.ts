import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { fromEnvelope } from '@facenet/core';
import { ComputeThreadError } from '../errors';
import type { ComputeReply, ComputeRequest, HeldState, InitResult } from './protocol';

type Body<T extends ComputeRequest['type']> = Omit<Extract<ComputeRequest, { type: T }>, 'id' | 'type'>;

/** The main thread's handle on the compute thread: typed request/reply over postMessage. */
export class ComputeClient {
  private readonly thread: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private exited: Error | undefined;

  constructor() {
    this.thread = new Worker(join(__dirname, 'compute-thread.js'));
    this.thread.on('message', (r: ComputeReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (r.ok) p.resolve(r.value);
      else p.reject(fromEnvelope(r.error));
    });
    const fail = (err: Error) => {
      this.exited = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    this.thread.on('error', (err) => fail(new ComputeThreadError(`compute thread crashed: ${err.message}`)));
    this.thread.on('exit', (code) => fail(new ComputeThreadError(`compute thread exited (${code})`)));
  }

  private call<T>(type: ComputeRequest['type'], body: object, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.exited) return Promise.reject(this.exited);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.thread.postMessage({ id, type, ...body }, transfer);
    });
  }

  /** Loads the compute backend now (not on the first step) and names it. */
  backend(): Promise<string> {
    return this.call('backend', {});
  }

  init(body: Body<'init'>): Promise<InitResult> {
    return this.call('init', body);
  }

  /** Transfers the image buffers to the thread (they are unusable here afterwards). */
  gradients(body: Body<'gradients'>): Promise<Float32Array> {
    return this.call(
      'gradients',
      body,
      body.shards.map((s) => s.images.buffer as ArrayBuffer),
    );
  }

  apply(body: Body<'apply'>): Promise<{ step: number; checksum?: string }> {
    return this.call('apply', body, [body.flat.buffer as ArrayBuffer]);
  }

  /** What the thread holds for `jobId` (null if another job or none), optionally written as a checkpoint. */
  state(jobId: string, checkpointDir?: string): Promise<HeldState | null> {
    return this.call('state', { jobId, checkpointDir });
  }

  /** Tensors the compute thread holds (model, optimizer slots, and any leak). */
  tensors(): Promise<number> {
    return this.call('memory', {});
  }

  checkpoint(dir: string): Promise<string> {
    return this.call('checkpoint', { dir });
  }

  async close(): Promise<void> {
    await this.thread.terminate();
  }
}
