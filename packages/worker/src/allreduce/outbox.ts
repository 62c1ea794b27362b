import * as grpc from '@grpc/grpc-js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { abortableWait } from './abortable-wait';
import type { PullStream } from './pull-stream';

/** Who may pull a collective: the ring successor's rank, knowing the generation's secret. */
export interface PullExpectation {
  toRank: number;
  secret: string;
}

interface Slot {
  /** Pulls that arrived for this collective, not yet checked (the local rank has not started it). */
  candidates: PullStream[];
  /** The verified successor's stream. */
  call?: PullStream;
  expect?: PullExpectation;
  waiter?: { resolve: (call: PullStream) => void; reject: (err: Error) => void };
  createdAt: number;
}

/** Pulls held per collective before this rank starts it, and collectives held in all. */
const CANDIDATES_PER_COLLECTIVE = 4;
const PENDING_COLLECTIVES = 256;

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Outgoing streams (gRPC Pulls or data-plane connections) by collective: the successor's Pull arrives (maybe before this rank starts
 * the collective) and waits here until this rank writes its rounds into it. A Pull is served
 * only if it names the expected successor rank and carries the generation's secret (compared in
 * constant time); others are refused with PERMISSION_DENIED and never see a byte. Pulls for
 * collectives this rank has not started are held in bounded numbers.
 */
export class Outbox {
  private readonly slots = new Map<string, Slot>();

  private slot(id: string): Slot | undefined {
    let s = this.slots.get(id);
    if (!s) {
      this.collectGarbage();
      if (this.slots.size >= PENDING_COLLECTIVES) return undefined;
      s = { candidates: [], createdAt: Date.now() };
      this.slots.set(id, s);
    }
    return s;
  }

  private static verified(call: PullStream, e: PullExpectation): boolean {
    const secretOk = timingSafeEqual(digest(call.request.secret), digest(e.secret));
    return secretOk && call.request.toRank === e.toRank;
  }

  /** Serves `call` if it is the expected successor; refuses it otherwise. */
  private offer(id: string, s: Slot, call: PullStream): void {
    const e = s.expect as PullExpectation;
    if (s.call) return call.deny(grpc.status.ALREADY_EXISTS, `collective ${id} is already being pulled`);
    if (!Outbox.verified(call, e))
      return call.deny(grpc.status.PERMISSION_DENIED, `collective ${id}: not this rank's successor, or a wrong secret`);
    s.call = call;
    call.onGone(() => this.slots.delete(id));
    s.waiter?.resolve(call);
  }

  /** Called by the Pull handler. */
  attach(id: string, call: PullStream): void {
    const s = this.slot(id);
    if (!s) return call.deny(grpc.status.RESOURCE_EXHAUSTED, 'too many collectives pending on this rank');
    if (s.expect) return this.offer(id, s, call);
    if (s.candidates.length >= CANDIDATES_PER_COLLECTIVE)
      return call.deny(grpc.status.RESOURCE_EXHAUSTED, `collective ${id}: too many pulls`);
    s.candidates.push(call);
    call.onGone(() => {
      s.candidates = s.candidates.filter((c) => c !== call);
    });
  }

  /** The verified successor's stream for `id`, once it has asked for it (or a failure: timeout, abort). */
  stream(id: string, expect: PullExpectation, timeoutMs: number, signal: AbortSignal): Promise<PullStream> {
    const s = this.slot(id);
    if (!s) return Promise.reject(new Error('too many collectives pending on this rank'));
    s.expect = expect;
    const early = s.candidates;
    s.candidates = [];
    for (const c of early) this.offer(id, s, c);
    if (s.call) return Promise.resolve(s.call);
    return abortableWait<PullStream>(
      signal,
      timeoutMs,
      () => `successor did not pull ${id} within ${timeoutMs} ms`,
      (resolve, reject) => {
        s.waiter = { resolve, reject };
        return () => (s.waiter = undefined);
      },
    );
  }

  /** Ends the stream normally (all rounds written). */
  finish(id: string): void {
    this.slots.get(id)?.call?.end();
    this.slots.delete(id);
  }

  /** Ends the stream with ABORTED so the successor aborts its step at once; a local wait for the
   * successor's pull fails too. */
  fail(id: string, reason: string, code = grpc.status.ABORTED): void {
    const s = this.slots.get(id);
    for (const c of [...(s?.candidates ?? []), ...(s?.call ? [s.call] : [])]) c.deny(code, reason);
    s?.waiter?.reject(new Error(reason));
    this.slots.delete(id);
  }

  failMatching(match: (id: string) => boolean, reason: string, code = grpc.status.ABORTED): void {
    for (const id of [...this.slots.keys()]) if (match(id)) this.fail(id, reason, code);
  }

  /** Pulls nobody served (an abandoned step, a made-up id) are aborted after a minute. */
  private collectGarbage(): void {
    const cutoff = Date.now() - 60_000;
    for (const [id, s] of this.slots) if (s.createdAt < cutoff && !s.expect) this.fail(id, 'collective never started');
  }
}
