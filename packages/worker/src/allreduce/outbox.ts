import * as grpc from '@grpc/grpc-js';
import type { PullResponse } from '../generated/facenet/v1/PullResponse';
import type { PullRequest__Output } from '../generated/facenet/v1/PullRequest';

type PullCall = grpc.ServerWritableStream<PullRequest__Output, PullResponse>;

interface Slot {
  call?: PullCall;
  waiter?: { resolve: (call: PullCall) => void; reject: (err: Error) => void };
  createdAt: number;
}

/**
 * Outgoing streams by collective: the successor's Pull arrives (maybe before this rank starts
 * the collective) and waits here until this rank writes its rounds into it.
 */
export class Outbox {
  private readonly slots = new Map<string, Slot>();

  private slot(id: string): Slot {
    let s = this.slots.get(id);
    if (!s) {
      s = { createdAt: Date.now() };
      this.slots.set(id, s);
      this.collectGarbage();
    }
    return s;
  }

  /** Called by the Pull handler. */
  attach(id: string, call: PullCall): void {
    const s = this.slot(id);
    if (s.call) {
      call.destroy(Object.assign(new Error(`collective ${id} is already being pulled`), { code: grpc.status.ALREADY_EXISTS }));
      return;
    }
    s.call = call;
    call.on('cancelled', () => this.slots.delete(id));
    s.waiter?.resolve(call);
  }

  /** The successor's stream for `id`, once it has asked for it (or a failure: timeout, abort). */
  stream(id: string, timeoutMs: number, signal: AbortSignal): Promise<PullCall> {
    const s = this.slot(id);
    if (s.call) return Promise.resolve(s.call);
    return new Promise((resolve, reject) => {
      const onAbort = () => settle(() => reject(signal.reason as Error));
      const timer = setTimeout(() => settle(() => reject(new Error(`successor did not pull ${id} within ${timeoutMs} ms`))), timeoutMs);
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        s.waiter = undefined;
        fn();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      s.waiter = { resolve: (call) => settle(() => resolve(call)), reject: (err) => settle(() => reject(err)) };
    });
  }

  /** Ends the stream normally (all rounds written). */
  finish(id: string): void {
    this.slots.get(id)?.call?.end();
    this.slots.delete(id);
  }

  /** Ends the stream with ABORTED so the successor aborts its step at once; a local wait for the
   * successor's pull fails too. */
  fail(id: string, reason: string): void {
    const s = this.slots.get(id);
    if (s?.call) s.call.destroy(Object.assign(new Error(reason), { code: grpc.status.ABORTED }));
    s?.waiter?.reject(new Error(reason));
    this.slots.delete(id);
  }

  failMatching(match: (id: string) => boolean, reason: string): void {
    for (const id of [...this.slots.keys()]) if (match(id)) this.fail(id, reason);
  }

  /** Pulls nobody served (an abandoned step) are aborted after five minutes. */
  private collectGarbage(): void {
    const cutoff = Date.now() - 5 * 60_000;
    for (const [id, s] of this.slots) if (s.createdAt < cutoff) this.fail(id, 'collective never started');
  }
}
