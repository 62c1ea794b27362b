import * as grpc from '@grpc/grpc-js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { parseCollectiveId } from '@facenet/protocol';
import { abortableWait } from './abortable-wait';
import type { PullStream } from './pull-stream';

/** Who may pull one collective (or one link of a recursive doubling): that rank, knowing the generation's secret. */
export interface PullExpectation {
  toRank: number;
  secret: string;
}

/** Who may pull anything of a generation from this rank: its ring successor and its doubling partners. */
export interface GenerationExpectation {
  toRanks: readonly number[];
  secret: string;
}

interface Slot {
  /** Pulls proven by the generation's secret, arrived before this rank started the collective. */
  candidates: PullStream[];
  /** The verified puller's stream. */
  call?: PullStream;
  expect?: PullExpectation;
  waiter?: { resolve: (call: PullStream) => void; reject: (err: Error) => void };
}

/** Proven pulls held per collective before this rank starts it. */
const CANDIDATES_PER_COLLECTIVE = 4;
/** Pulls nobody can vouch for yet (an unknown generation): held this many per remote host, this many in all, this long. */
const UNPROVEN_PER_HOST = 4;
const UNPROVEN_MAX = 16;
const UNPROVEN_TTL_MS = 10_000;
/** Generations whose expectation this rank remembers (a worker takes part in few at a time). */
const GENERATIONS_KEPT = 64;

const digest = (s: string) => createHash('sha256').update(s).digest();
const generationOf = (id: string) => {
  const c = parseCollectiveId(id);
  return c ? `${c.jobId}/${c.generation}` : undefined;
};

/**
 * Outgoing streams (gRPC Pulls or data-plane connections) by collective. A pull proves itself
 * before it is given anything lasting: it must name a rank allowed to pull from this one (its
 * ring successor or a doubling partner; for a collective under way, exactly the rank that
 * collective sends to) and carry the generation's secret (compared in constant time). The rank learns a generation's expectation
 * when a shard job of it arrives (`expectGeneration`) or when it starts one of its collectives,
 * so a stranger's pull is refused on arrival with PERMISSION_DENIED and holds nothing. Only a
 * pull for a generation this rank has not heard of yet (its successor got its shard job first)
 * cannot be checked: a few of those are held per remote host for 10 s, and beyond that refused
 * with RESOURCE_EXHAUSTED, which the real successor retries. The rank's own collectives always
 * get their slot: no number of strangers can refuse them.
 */
export class Outbox {
  private readonly slots = new Map<string, Slot>();
  private readonly generations = new Map<string, GenerationExpectation>();
  private readonly unproven = new Map<PullStream, { id: string; timer: NodeJS.Timeout }>();

  private static verified(call: PullStream, e: PullExpectation | GenerationExpectation): boolean {
    const secretOk = timingSafeEqual(digest(call.request.secret), digest(e.secret));
    return secretOk && ('toRank' in e ? call.request.toRank === e.toRank : e.toRanks.includes(call.request.toRank));
  }

  /** Remembers who may pull the collectives of a generation ("job/generation"). */
  expectGeneration(jobId: string, generation: number, expect: GenerationExpectation): void {
    const key = `${jobId}/${generation}`;
    this.generations.delete(key);
    this.generations.set(key, expect);
    if (this.generations.size > GENERATIONS_KEPT) this.generations.delete(this.generations.keys().next().value as string);
    // Pulls held unproven for this generation can be judged now.
    for (const [call, u] of [...this.unproven]) {
      if (generationOf(u.id) !== key) continue;
      this.release(call);
      this.judge(u.id, call, expect);
    }
  }

  private ownSlot(id: string): Slot {
    let s = this.slots.get(id);
    if (!s) {
      s = { candidates: [] };
      this.slots.set(id, s);
    }
    return s;
  }

  /** Serves `call` if it is the expected puller; refuses it otherwise. */
  private offer(id: string, s: Slot, call: PullStream): void {
    const e = s.expect as PullExpectation;
    // Verified first: a stranger learns nothing, not even whether the collective is being pulled.
    if (!Outbox.verified(call, e))
      return call.deny(grpc.status.PERMISSION_DENIED, `collective ${id}: not a rank this one sends to, or a wrong secret`);
    if (s.call) return call.deny(grpc.status.ALREADY_EXISTS, `collective ${id} is already being pulled`);
    s.call = call;
    call.onGone(() => this.slots.delete(id));
    s.waiter?.resolve(call);
  }

  /** A pull for a collective not started yet, checked against its generation's expectation. */
  private judge(id: string, call: PullStream, e: GenerationExpectation): void {
    if (!Outbox.verified(call, e))
      return call.deny(grpc.status.PERMISSION_DENIED, `collective ${id}: not a rank this one sends to, or a wrong secret`);
    const s = this.ownSlot(id);
    if (s.expect) return this.offer(id, s, call);
    if (s.candidates.length >= CANDIDATES_PER_COLLECTIVE)
      return call.deny(grpc.status.RESOURCE_EXHAUSTED, `collective ${id}: too many pulls`);
    s.candidates.push(call);
    call.onGone(() => {
      s.candidates = s.candidates.filter((c) => c !== call);
      if (!s.expect && s.candidates.length === 0 && !s.call) this.slots.delete(id);
    });
  }

  /** Called by the Pull handler (either transport). */
  attach(id: string, call: PullStream): void {
    const s = this.slots.get(id);
    if (s?.expect) return this.offer(id, s, call);
    const gen = generationOf(id);
    const known = gen ? this.generations.get(gen) : undefined;
    if (known) return this.judge(id, call, known);
    if (!gen) return call.deny(grpc.status.INVALID_ARGUMENT, `malformed collective id`);
    const fromHost = [...this.unproven.keys()].filter((c) => c.peer === call.peer).length;
    if (this.unproven.size >= UNPROVEN_MAX || fromHost >= UNPROVEN_PER_HOST)
      return call.deny(grpc.status.RESOURCE_EXHAUSTED, `collective ${id}: this rank has not started that generation`);
    const timer = setTimeout(() => {
      this.unproven.delete(call);
      call.deny(grpc.status.RESOURCE_EXHAUSTED, `collective ${id}: this rank has not started that generation`);
    }, UNPROVEN_TTL_MS).unref();
    this.unproven.set(call, { id, timer });
    call.onGone(() => this.release(call));
  }

  /** Forgets an unproven pull (judged, expired, gone) and its timer. */
  private release(call: PullStream): { id: string } | undefined {
    const u = this.unproven.get(call);
    if (!u) return undefined;
    clearTimeout(u.timer);
    this.unproven.delete(call);
    return u;
  }

  /**
   * The verified puller's stream for `id`, once it has asked for it (or a failure: timeout,
   * abort). The caller has told `expectGeneration` first, so pulls that came early are judged.
   */
  stream(id: string, expect: PullExpectation, timeoutMs: number, signal: AbortSignal): Promise<PullStream> {
    const s = this.ownSlot(id);
    s.expect = expect;
    const early = s.candidates;
    s.candidates = [];
    for (const call of early) this.offer(id, s, call);
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
    for (const [call, u] of [...this.unproven]) {
      if (u.id !== id) continue;
      this.release(call);
      call.deny(code, reason);
    }
  }

  failMatching(match: (id: string) => boolean, reason: string, code = grpc.status.ABORTED): void {
    const ids = new Set([...this.slots.keys(), ...[...this.unproven.values()].map((u) => u.id)]);
    for (const id of ids) if (match(id)) this.fail(id, reason, code);
  }
}
