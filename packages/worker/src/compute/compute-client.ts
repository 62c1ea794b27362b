import { join } from 'node:path';
import type { GpuAdapterInfo } from '@facenet/core';
import { ThreadClient } from '../threads/thread-client';
import type { ComputeRequest, HeldState, InitResult } from './protocol';

type Body<T extends ComputeRequest['type']> = Omit<Extract<ComputeRequest, { type: T }>, 'id' | 'type'>;

/** The main thread's handle on the compute thread, which owns the model and optimizer. */
export class ComputeClient {
  private readonly thread = new ThreadClient(join(__dirname, 'compute-thread.js'), 'compute');

  /** Loads the compute backend now (not on the first step) and names it. */
  backend(): Promise<{ name: string; adapter?: GpuAdapterInfo }> {
    return this.thread.call('backend', {});
  }

  init(body: Body<'init'>): Promise<InitResult> {
    return this.thread.call('init', body);
  }

  /** Transfers the image buffers to the thread (they are unusable here afterwards). */
  gradients(body: Body<'gradients'>): Promise<Float32Array> {
    return this.thread.call(
      'gradients',
      body,
      body.shards.map((s) => s.images.buffer as ArrayBuffer),
    );
  }

  apply(body: Body<'apply'>): Promise<{ step: number; checksum?: string }> {
    return this.thread.call('apply', body, [body.flat.buffer as ArrayBuffer]);
  }

  /** What the thread holds for `jobId` (null if another job or none), optionally written as a checkpoint. */
  state(jobId: string, checkpointDir?: string): Promise<HeldState | null> {
    return this.thread.call('state', { jobId, checkpointDir });
  }

  /** Tensors the compute thread holds (model, optimizer slots, and any leak). */
  tensors(): Promise<number> {
    return this.thread.call('memory', {});
  }

  checkpoint(dir: string): Promise<string> {
    return this.thread.call('checkpoint', { dir });
  }

  /** Stops the computation in flight; the model and optimizer it held are gone (the next step restores). */
  interrupt(reason: string): Promise<void> {
    return this.thread.interrupt(reason);
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}
