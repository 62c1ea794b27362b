import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ErrorEnvelope, fromEnvelope } from '@facenet/core';
import type { CheckpointMiner, MiningJob } from './mine-checkpoint';
import type { CompiledMinerOptions } from './miner-options';

type Mined = Awaited<ReturnType<CheckpointMiner['mine']>>;

export interface MiningRequest {
  id: number;
  job: MiningJob;
  checkpoint: string;
  step: number;
  /** The job's stored dataset index (sent with every request: the thread may have dropped its source). */
  packed?: Uint8Array;
}

export type MiningReply = { id: number; ok: true; value: Mined } | { id: number; ok: false; error: ErrorEnvelope };

/**
 * The miner's main-thread handle on its mining thread (mining-thread.ts). One request at a time:
 * a mining pass holds the thread's memory for the whole pass, so a second one is refused, not queued.
 */
export class MiningClient {
  private readonly thread: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: Mined) => void; reject: (e: Error) => void }>();
  private exited: Error | undefined;

  constructor(
    options: CompiledMinerOptions,
    private readonly fetchIndex: (id: string) => Promise<Uint8Array>,
  ) {
    this.thread = new Worker(join(__dirname, 'mining-thread.js'), { workerData: options });
    this.thread.on('message', (r: MiningReply) => {
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
    this.thread.on('error', (err) => fail(new Error(`mining thread crashed: ${err.message}`)));
    this.thread.on('exit', (code) => fail(new Error(`mining thread exited (${code})`)));
  }

  async mine(job: MiningJob, checkpoint: string, step: number): Promise<Mined> {
    if (this.exited) throw this.exited;
    if (this.pending.size > 0) throw new Error('the mining thread is busy: one mining pass at a time');
    const id = this.nextId++;
    const done = new Promise<Mined>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    try {
      const packed = job.dataIndex ? await this.fetchIndex(job.dataIndex) : undefined;
      this.thread.postMessage({ id, job, checkpoint, step, packed } satisfies MiningRequest, packed ? [packed.buffer as ArrayBuffer] : []);
    } catch (err) {
      this.pending.delete(id);
      throw err;
    }
    return done;
  }

  async close(): Promise<void> {
    await this.thread.terminate();
  }
}
