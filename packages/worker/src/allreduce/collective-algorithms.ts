import {
  AllreduceAlgorithm,
  CollectiveAlgorithm,
  collectiveLinkId,
  doublingSources,
  recursiveDoublingSchedule,
  RingPlace,
} from '@facenet/protocol';
import { AllreduceError } from '../errors';
import type { Mailbox } from './mailbox';
import type { Outbox, PullExpectation } from './outbox';
import type { PullStream } from './pull-stream';
import { ringSchedule, segmentBounds } from './segments';
import { roundToHalf } from './fp16';
import { whenFlushed, writeRound } from './round-writes';

/**
 * The two collectives a rank runs, over the links its AllreducePeer keeps (ring-allreduce.ts):
 * the ring (reduce-scatter then all-gather) for large vectors, recursive doubling for small ones.
 * Both only move data through `RankLinks`, so the transport (TCP data plane or gRPC, TLS or not)
 * is the peer's business and the schedules are this file's.
 */

/** What the collectives need of a rank: its mailbox and outbox, and the transport's pull and successor streams. */
export interface RankLinks {
  readonly mailbox: Mailbox;
  readonly outbox: Outbox;
  readonly timeoutMs: number;
  /** Elements per chunk written (the transport's unit). */
  readonly chunkElements: number;
  /** Starts receiving collective `id` from `address` into the mailbox; any failure aborts `abort`. */
  pull(
    address: string,
    id: string,
    rank: number,
    secret: string,
    wire: { elementBytes: number; roundBytes: number },
    abort: AbortController,
  ): { cancel(): void };
  /** The stream the rank `expect` names pulls `id` through. */
  successor(id: string, expect: PullExpectation, abort: AbortController): Promise<PullStream>;
}

/**
 * Up to this many bytes on the wire, 'auto' runs recursive doubling: its log2 W rounds of the whole
 * vector beat the ring's 2(W-1) rounds of 1/W of it while per-round latency, not bandwidth, is
 * the cost. Measured with bench/allreduce-latency.ts (README, Performance).
 */
export const DOUBLING_MAX_BYTES = 64 << 10;

/** The collective a rank runs: every rank computes the same from the same vector length, W and option. */
export function chooseAlgorithm(bytes: number, ring: RingPlace, option: AllreduceAlgorithm = 'auto'): CollectiveAlgorithm {
  // A shard job from a coordinator that names no doubling partners: every rank of it uses the ring.
  if (ring.size <= 1 || !ring.partners) return 'ring';
  if (option !== 'auto') return option;
  return bytes <= DOUBLING_MAX_BYTES ? 'recursive-doubling' : 'ring';
}

/** One collective as the algorithms run it: what `allreduce` was given, and the controller that aborts it. */
export interface CollectiveRun {
  id: string;
  data: Float32Array;
  rank: number;
  ring: RingPlace;
  secret: string;
  fp16: boolean;
  abort: AbortController;
}

/** Reduce-scatter then all-gather around the ring: 2(W-1) rounds, 2(W-1)/W of the vector sent. Returns bytes sent. */
export async function ringAllreduce(links: RankLinks, { id, data, rank, ring, secret, fp16, abort }: CollectiveRun): Promise<number> {
  const W = ring.size;
  const segments = segmentBounds(data.length, W);
  const schedule = ringSchedule(rank, W);
  links.mailbox.expect(
    id,
    data,
    new Map(
      schedule.map((st) => {
        const [r0, r1] = segments[st.receive] as [number, number];
        return [st.round, { base: r0, length: r1 - r0, reduce: st.reduce }];
      }),
    ),
    fp16 ? 2 : 4,
  );
  const elementBytes = fp16 ? 2 : 4;
  const roundBytes = Math.max(...segments.map(([a, b]) => b - a)) * elementBytes;
  const incoming = links.pull(ring.predecessor, id, rank, secret, { elementBytes, roundBytes }, abort);
  let sent = 0;
  try {
    const out = await links.successor(id, { toRank: (rank + 1) % W, secret }, abort);
    let last: Promise<void> = Promise.resolve();
    for (const step of schedule) {
      const [s0, s1] = segments[step.send] as [number, number];
      // The first all-gather round sends the segment this rank finished reducing. With fp16 the
      // others receive it rounded, so this rank rounds its own copy too: all ranks stay identical.
      if (fp16 && step.round === W - 1) roundToHalf(data, s0, s1);
      const w = await writeRound(out, step.round, data, s0, s1, fp16, abort.signal, links.chunkElements);
      sent += w.bytes;
      last = w.flushed;
      const [r0, r1] = segments[step.receive] as [number, number];
      await links.mailbox.take(id, step.round, r1 - r0, links.timeoutMs, abort.signal);
    }
    // The vector goes back to the caller (and on to the compute thread) only once nothing
    // queued for the wire still refers to it.
    await whenFlushed(last, abort.signal, links.timeoutMs);
    links.outbox.finish(id);
    return sent;
  } catch (err) {
    const reason = (abort.signal.reason as Error | undefined)?.message ?? (err as Error).message;
    abort.abort(err);
    links.outbox.fail(id, reason);
    incoming.cancel();
    throw new AllreduceError(id, rank, reason);
  } finally {
    links.mailbox.finish(id);
  }
}

/**
 * Recursive doubling (`recursiveDoublingSchedule`): each step this rank sends its whole vector
 * to one partner and adds the partner's, so after log2 W exchanges every rank holds the sum.
 * Float addition is commutative, so both ends of an exchange compute the same bits (a + b and
 * b + a), and so does every rank at the end. Each step is its own link ("<id>/<step>"), pulled
 * from the partner; all pulls open at once so connection setup overlaps. Returns bytes sent.
 */
export async function doublingAllreduce(links: RankLinks, { id, data, rank, ring, secret, fp16, abort }: CollectiveRun): Promise<number> {
  const schedule = recursiveDoublingSchedule(rank, ring.size);
  const sources = doublingSources(rank, ring.size);
  const addresses = new Map(sources.map((r, i) => [r, ring.partners?.[i]]));
  const width = fp16 ? 2 : 4;
  const incoming = schedule.flatMap((st) => {
    if (st.receiveFrom === undefined) return [];
    const address = addresses.get(st.receiveFrom);
    if (!address) throw new AllreduceError(id, rank, `the shard job names no address for doubling partner ${st.receiveFrom}`);
    return [
      links.pull(address, collectiveLinkId(id, st.step), rank, secret, { elementBytes: width, roundBytes: data.length * width }, abort),
    ];
  });
  let sent = 0;
  try {
    for (const st of schedule) {
      const link = collectiveLinkId(id, st.step);
      let flushed: Promise<void> | undefined;
      if (st.sendTo !== undefined) {
        // With fp16 the partner receives this rank's vector rounded; rounding its own copy first
        // keeps both ends adding the same two values.
        if (fp16) roundToHalf(data, 0, data.length);
        // In an exchange the partner's vector is added into `data` while the transport may still
        // be reading what was sent, so what is sent is a copy (cheap: these vectors are small).
        const sending = st.receiveFrom === undefined ? data : data.slice();
        const out = await links.successor(link, { toRank: st.sendTo, secret }, abort);
        const w = await writeRound(out, 0, sending, 0, sending.length, fp16, abort.signal, links.chunkElements);
        sent += w.bytes;
        flushed = w.flushed;
      }
      if (st.receiveFrom !== undefined) {
        // Set only now: data that came early waits in the mailbox instead of entering the vector
        // before this step's send was copied.
        links.mailbox.expect(link, data, new Map([[0, { base: 0, length: data.length, reduce: st.receive === 'add' }]]), width);
        await links.mailbox.take(link, 0, data.length, links.timeoutMs, abort.signal);
      }
      if (flushed) {
        await whenFlushed(flushed, abort.signal, links.timeoutMs);
        links.outbox.finish(link);
      }
    }
    // A folded-out rank received the sum as halves; the others round theirs alike.
    if (fp16) roundToHalf(data, 0, data.length);
    return sent;
  } catch (err) {
    const reason = (abort.signal.reason as Error | undefined)?.message ?? (err as Error).message;
    abort.abort(err);
    for (const st of schedule) links.outbox.fail(collectiveLinkId(id, st.step), reason);
    for (const pull of incoming) pull.cancel();
    throw new AllreduceError(id, rank, reason);
  } finally {
    for (const st of schedule) links.mailbox.finish(collectiveLinkId(id, st.step));
  }
}
