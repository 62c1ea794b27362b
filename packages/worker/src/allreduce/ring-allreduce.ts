import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { AllreduceServiceClient } from '../generated/facenet/v1/AllreduceService';
import type { PullResponse, PullResponse__Output } from '../generated/facenet/v1/PullResponse';
import type { PullRequest__Output } from '../generated/facenet/v1/PullRequest';
import {
  AllreduceAlgorithm,
  CollectiveAlgorithm,
  collectiveLinkId,
  doublingSinks,
  doublingSources,
  parseCollectiveId,
  recursiveDoublingSchedule,
  RingPlace,
} from '@facenet/protocol';
import { AllreduceError } from '../errors';
import { AllreduceOptions, compileAllreduceOptions, CompiledAllreduceOptions } from './allreduce-options';
import { Mailbox } from './mailbox';
import { abortableWait } from './abortable-wait';
import { Outbox, PullExpectation } from './outbox';
import { GrpcPullStream, PullStream, SECRET_METADATA } from './pull-stream';
import { DataPlaneServer, TlsMaterial } from './tcp-data-plane';
import { DataPlaneClient, PullHandlers } from './tcp-data-client';
import type { Hello } from './tcp-frames';
import { facenetProto } from './proto';
import { ringSchedule, segmentBounds } from './segments';
import { encodeHalves, roundToHalf } from './fp16';
import { dropIpServerNameWarning } from './ip-servername-warning';

dropIpServerNameWarning();

export interface AllreduceStats {
  /** Bytes this rank sent. */
  bytes: number;
  /** The algorithm that ran ('ring' for W=1, which sends nothing). */
  algorithm: CollectiveAlgorithm;
}

export interface CollectiveOptions {
  /**
   * 'fp16': values travel as IEEE halves (half the bytes); sums are still accumulated in
   * float32. Every rank must use the same setting (it comes from the job spec). @default 'none'
   */
  compression?: 'none' | 'fp16';
  /** Every rank must pass the same (it comes from the job spec); see `chooseAlgorithm`. @default 'auto' */
  algorithm?: AllreduceAlgorithm;
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

type PullCall = grpc.ServerWritableStream<PullRequest__Output, PullResponse>;

/** One collective as the algorithms run it: what `allreduce` was given, and the controller that aborts it. */
interface CollectiveRun {
  id: string;
  data: Float32Array;
  rank: number;
  ring: RingPlace;
  secret: string;
  fp16: boolean;
  abort: AbortController;
}

const MESSAGE_LIMIT = 8 << 20;
/** How long a rank waits for a peer to say where its data plane is. */
const ENDPOINT_DEADLINE_MS = 15_000;

/** "host:port" or "[v6]:port" -> host, without brackets. */
function hostOf(address: string): string {
  const host = address.slice(0, address.lastIndexOf(':'));
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * One rank's side of the gradient collectives. Each rank serves Pull (the ranks it sends to pull
 * what it writes) and pulls from the ranks it receives from into a mailbox. `allreduce` sums a
 * vector across the world in place: around the ring (reduce-scatter then all-gather, 2(W-1)/W of
 * the vector sent per rank, for large vectors) or by recursive doubling (log2 W exchanges of the
 * whole vector, for small ones).
 * gRPC is the control plane; with transport 'tcp' (the default) the rounds themselves travel
 * on a raw TCP data plane whose port each rank learns from its predecessor over gRPC, and a
 * predecessor that offers none is pulled through gRPC.
 */
export class AllreducePeer {
  private readonly server = new grpc.Server({ 'grpc.max_send_message_length': MESSAGE_LIMIT });
  private readonly mailbox = new Mailbox();
  private readonly outbox = new Outbox();
  private readonly clients = new Map<string, AllreduceServiceClient>();
  private readonly options: CompiledAllreduceOptions;
  private readonly chunkElements: number;
  private readonly timeoutMs: number;
  /** "<job>/<generation>" pairs the coordinator abandoned: their collectives fail at once. */
  private readonly abandoned = new Set<string>();
  /** Collectives in flight on this rank, each with the controller that aborts it. */
  private readonly running = new Map<string, AbortController>();
  address = '';
  private clientCredentials: grpc.ChannelCredentials = grpc.credentials.createInsecure();
  private tlsMaterial: TlsMaterial | undefined;
  private dataPlane: DataPlaneServer | undefined;
  private dataClient = new DataPlaneClient();
  private dataPort = 0;
  /** Data-plane port of each predecessor address, asked once over gRPC. */
  private readonly dataPorts = new Map<string, Promise<number>>();

  constructor(options: AllreduceOptions = {}) {
    this.options = compileAllreduceOptions(options);
    this.chunkElements = this.options.chunkBytes / 4;
    this.timeoutMs = this.options.timeoutMs;
    this.server.addService(facenetProto().facenet.v1.AllreduceService.service, {
      Pull: (call: PullCall) => this.outbox.attach(call.request.collective_id, new GrpcPullStream(call)),
      DataEndpoint: (_call: unknown, callback: grpc.sendUnaryData<{ port: number }>) => callback(null, { port: this.dataPort }),
    });
  }

  /** Server and client credentials: mutual TLS when configured (read once, at start), else plaintext. */
  private credentials(): { server: grpc.ServerCredentials; client: grpc.ChannelCredentials; material?: TlsMaterial } {
    const tls = this.options.tls;
    if (!tls) return { server: grpc.ServerCredentials.createInsecure(), client: grpc.credentials.createInsecure() };
    const read = (what: string, path: string) => {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new Error(`cannot read the TLS ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    };
    const [ca, cert, key] = [read('CA', tls.ca), read('certificate', tls.cert), read('key', tls.key)];
    return {
      server: grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], true),
      client: grpc.credentials.createSsl(ca, key, cert),
      material: { ca, cert, key },
    };
  }

  /** Starts the server; resolves to the address other ranks dial. */
  async start(): Promise<string> {
    const host = this.options.host;
    const creds = this.credentials();
    this.clientCredentials = creds.client;
    this.tlsMaterial = creds.material;
    this.dataClient = new DataPlaneClient(this.tlsMaterial);
    if (this.options.transport === 'tcp') {
      this.dataPlane = new DataPlaneServer((id, stream) => this.outbox.attach(id, stream), this.tlsMaterial);
      this.dataPort = await this.dataPlane.listen(host, this.options.dataPort);
    }
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${host}:${this.options.port}`, creds.server, (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.address = this.options.advertiseAddress ?? `${host}:${port}`;
    return this.address;
  }

  private client(address: string): AllreduceServiceClient {
    let c = this.clients.get(address);
    if (!c) {
      const Ctor = facenetProto().facenet.v1.AllreduceService;
      c = new Ctor(address, this.clientCredentials, {
        'grpc.max_receive_message_length': MESSAGE_LIMIT,
        'grpc-node.flow_control_window': this.options.windowBytes,
      });
      this.clients.set(address, c);
    }
    return c;
  }

  /** Where `address` serves its data plane: 0 for none (or transport 'grpc' here). */
  private predecessorDataPort(address: string): Promise<number> {
    if (this.options.transport === 'grpc') return Promise.resolve(0);
    let port = this.dataPorts.get(address);
    if (!port) {
      port = new Promise<number>((resolve, reject) => {
        this.client(address).DataEndpoint({}, { deadline: Date.now() + ENDPOINT_DEADLINE_MS }, (err, res) =>
          err ? reject(err) : resolve(res?.port ?? 0),
        );
      });
      port.catch(() => this.dataPorts.delete(address)); // ask again next time
      this.dataPorts.set(address, port);
    }
    return port;
  }

  /**
   * Starts receiving collective `id` from `address` into the mailbox, over the predecessor's
   * data plane or, when it has none, its gRPC Pull. Any failure of the stream aborts the
   * collective, and so does a stream that ends before every round arrived: the predecessor has
   * stopped sending, and waiting for the timeout would only delay the fault.
   */
  private pull(
    address: string,
    id: string,
    rank: number,
    secret: string,
    wire: { elementBytes: number; roundBytes: number },
    abort: AbortController,
  ): { cancel(): void } {
    let cancelled = false;
    let received = false;
    let handle: { cancel(): void } | undefined;
    // A predecessor that has not heard of this generation yet answers RESOURCE_EXHAUSTED (it
    // holds only a few pulls it cannot check); ask again until it has, within the timeout.
    const retryUntil = Date.now() + this.timeoutMs;
    const failWith = (err: Error) => {
      this.mailbox.fail(id, err);
      abort.abort(err);
    };
    // What either transport hands on: chunks, the end, a refusal, a broken connection.
    const handlers: PullHandlers = {
      data: (round, offset, bytes) => {
        received = true;
        try {
          this.mailbox.deliver(id, round, offset, bytes);
        } catch (err) {
          failWith(err as Error);
          handle?.cancel();
        }
      },
      end: () => {
        const missing = this.mailbox.shortfall(id);
        if (missing) failWith(new Error(`predecessor ${address} ended its stream after ${missing}`));
      },
      error: (code, reason) => {
        if (code === grpc.status.RESOURCE_EXHAUSTED && !received && !cancelled && !abort.signal.aborted && Date.now() < retryUntil) {
          setTimeout(() => {
            if (!cancelled && !abort.signal.aborted) void connect();
          }, 100);
          return;
        }
        failWith(new Error(`predecessor ${address}: ${reason} (${grpc.status[code] ?? code})`));
      },
      failed: (err) => {
        // Ask for the port again next time: a restarted peer at the same address may have a new one.
        this.dataPorts.delete(address);
        if (!abort.signal.aborted) failWith(new Error(`predecessor ${address}: ${err.message}`));
      },
    };
    const hello = { collective_id: id, to_rank: rank, secret };
    const connect = () =>
      this.predecessorDataPort(address).then(
        (port) => {
          if (cancelled) return;
          handle = port
            ? this.dataClient.pull(hostOf(address), port, hello, wire, handlers)
            : this.pullGrpc(address, hello, handlers, abort.signal);
        },
        (err: Error) => failWith(new Error(`predecessor ${address} did not say where its data plane is: ${err.message}`)),
      );
    void connect();
    return {
      cancel: () => {
        cancelled = true;
        handle?.cancel();
      },
    };
  }

  /** The same pull through the predecessor's gRPC Pull stream (a predecessor without a data plane). */
  private pullGrpc(address: string, hello: Hello, handlers: PullHandlers, aborted: AbortSignal): { cancel(): void } {
    const metadata = new grpc.Metadata();
    metadata.set(SECRET_METADATA, hello.secret);
    const stream = this.client(address).Pull({ collective_id: hello.collective_id, to_rank: hello.to_rank }, metadata);
    stream.on('data', (c: PullResponse__Output) => handlers.data(c.round, c.offset, c.data));
    stream.on('error', (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED || !aborted.aborted) handlers.error(err.code, err.details || err.message);
    });
    stream.on('end', () => handlers.end());
    return { cancel: () => stream.cancel() };
  }

  /**
   * Writes data[s0, s1) as one round into the successor's stream, in bounded chunks that are
   * views on the vector (no copy). The transport may read a queued chunk later (grpc-js
   * serializes it, the TCP socket sends from the vector's memory), so the vector must not change
   * or move until then: `flushed` resolves once the round's last chunk has been taken (a stream's
   * chunks are taken in order), and `allreduce` waits for the last round's before it hands the
   * vector back. Within a collective a segment sent is only overwritten after its data has come
   * round the ring, so it was taken long before.
   */
  private async write(
    out: PullStream,
    round: number,
    data: Float32Array,
    s0: number,
    s1: number,
    fp16: boolean,
    signal: AbortSignal,
  ): Promise<{ bytes: number; flushed: Promise<void> }> {
    let bytes = 0;
    let flushed: Promise<void> = Promise.resolve();
    for (let off = s0; off < s1; off += this.chunkElements) {
      const end = Math.min(s1, off + this.chunkElements);
      const chunk = fp16 ? encodeHalves(data, off, end) : Buffer.from(data.buffer, data.byteOffset + off * 4, (end - off) * 4);
      bytes += chunk.length;
      signal.throwIfAborted();
      if (out.gone) throw new Error('successor went away');
      let ok = true;
      flushed = new Promise<void>((resolve) => {
        ok = out.write(round, off - s0, chunk, resolve);
      });
      if (!ok) await out.drained(signal);
    }
    return { bytes, flushed };
  }

  /** Waits until the transport has taken the last chunk written (or the stream is gone, so it never will). */
  private async flushed(last: Promise<void>, signal: AbortSignal): Promise<void> {
    await abortableWait<void>(
      signal,
      this.timeoutMs,
      () => `successor stream did not take the last round within ${this.timeoutMs} ms`,
      (done) => {
        void last.then(done);
        return () => {};
      },
    ).catch((err: unknown) => {
      if (!signal.aborted) throw err; // aborted: the stream is gone, so nothing queued will be read
    });
  }

  private checkAbandoned(id: string, rank: number): void {
    const c = parseCollectiveId(id);
    if (c && this.abandoned.has(`${c.jobId}/${c.generation}`))
      throw new AllreduceError(id, rank, 'generation abandoned by the coordinator');
  }

  /** The successor's stream for `id`; its cancellation (the successor failed or died) aborts the collective. */
  private async successor(id: string, expect: PullExpectation, abort: AbortController): Promise<PullStream> {
    const out = await this.outbox.stream(id, expect, this.timeoutMs, abort.signal);
    const gone = () => abort.abort(new Error('successor cancelled its pull'));
    if (out.gone) gone();
    out.onGone(gone);
    return out;
  }

  /**
   * Sums `data` across the ranks in place (`ring`: the world's size, this rank's predecessor and
   * its doubling partners), by the ring or by recursive doubling (`chooseAlgorithm`). Every rank
   * calls this with the same collective id, vector length and options. Throws AllreduceError on
   * any failure; the vector's contents are then undefined and must not be applied. Once it
   * resolves the caller owns `data` again: nothing queued for the wire refers to it. All ranks end
   * with bit-identical sums. `secret` is the job generation's collective secret: this rank sends
   * it with its pulls and serves its rounds only to the ranks it sends to that present the same one.
   */
  async allreduce(
    id: string,
    data: Float32Array,
    rank: number,
    ring: RingPlace,
    secret = '',
    options: CollectiveOptions = {},
  ): Promise<AllreduceStats> {
    // Every rank has the same length, so an empty vector is empty everywhere: nothing to exchange.
    if (ring.size <= 1 || data.length === 0) return { bytes: 0, algorithm: 'ring' };
    const fp16 = options.compression === 'fp16';
    this.checkAbandoned(id, rank);
    const c = parseCollectiveId(id);
    if (c) this.expectGeneration(c.jobId, c.generation, rank, ring.size, secret);
    const algorithm = chooseAlgorithm(data.length * (fp16 ? 2 : 4), ring, options.algorithm);
    const abort = new AbortController();
    this.running.set(id, abort);
    try {
      const run: CollectiveRun = { id, data, rank, ring, secret, fp16, abort };
      const bytes = algorithm === 'ring' ? await this.ringAllreduce(run) : await this.doublingAllreduce(run);
      return { bytes, algorithm };
    } finally {
      this.running.delete(id);
    }
  }

  /** Reduce-scatter then all-gather around the ring: 2(W-1) rounds, 2(W-1)/W of the vector sent. Returns bytes sent. */
  private async ringAllreduce({ id, data, rank, ring, secret, fp16, abort }: CollectiveRun): Promise<number> {
    const W = ring.size;
    const segments = segmentBounds(data.length, W);
    const schedule = ringSchedule(rank, W);
    this.mailbox.expect(
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
    const incoming = this.pull(ring.predecessor, id, rank, secret, { elementBytes, roundBytes }, abort);
    let sent = 0;
    try {
      const out = await this.successor(id, { toRank: (rank + 1) % W, secret }, abort);
      let last: Promise<void> = Promise.resolve();
      for (const step of schedule) {
        const [s0, s1] = segments[step.send] as [number, number];
        // The first all-gather round sends the segment this rank finished reducing. With fp16 the
        // others receive it rounded, so this rank rounds its own copy too: all ranks stay identical.
        if (fp16 && step.round === W - 1) roundToHalf(data, s0, s1);
        const w = await this.write(out, step.round, data, s0, s1, fp16, abort.signal);
        sent += w.bytes;
        last = w.flushed;
        const [r0, r1] = segments[step.receive] as [number, number];
        await this.mailbox.take(id, step.round, r1 - r0, this.timeoutMs, abort.signal);
      }
      // The vector goes back to the caller (and on to the compute thread) only once nothing
      // queued for the wire still refers to it.
      await this.flushed(last, abort.signal);
      this.outbox.finish(id);
      return sent;
    } catch (err) {
      const reason = (abort.signal.reason as Error | undefined)?.message ?? (err as Error).message;
      abort.abort(err);
      this.outbox.fail(id, reason);
      incoming.cancel();
      throw new AllreduceError(id, rank, reason);
    } finally {
      this.mailbox.finish(id);
    }
  }

  /**
   * Recursive doubling (`recursiveDoublingSchedule`): each step this rank sends its whole vector
   * to one partner and adds the partner's, so after log2 W exchanges every rank holds the sum.
   * Float addition is commutative, so both ends of an exchange compute the same bits (a + b and
   * b + a), and so does every rank at the end. Each step is its own link ("<id>/<step>"), pulled
   * from the partner; all pulls open at once so connection setup overlaps. Returns bytes sent.
   */
  private async doublingAllreduce({ id, data, rank, ring, secret, fp16, abort }: CollectiveRun): Promise<number> {
    const schedule = recursiveDoublingSchedule(rank, ring.size);
    const sources = doublingSources(rank, ring.size);
    const addresses = new Map(sources.map((r, i) => [r, ring.partners?.[i]]));
    const width = fp16 ? 2 : 4;
    const incoming = schedule.flatMap((st) => {
      if (st.receiveFrom === undefined) return [];
      const address = addresses.get(st.receiveFrom);
      if (!address) throw new AllreduceError(id, rank, `the shard job names no address for doubling partner ${st.receiveFrom}`);
      return [
        this.pull(address, collectiveLinkId(id, st.step), rank, secret, { elementBytes: width, roundBytes: data.length * width }, abort),
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
          const out = await this.successor(link, { toRank: st.sendTo, secret }, abort);
          const w = await this.write(out, 0, sending, 0, sending.length, fp16, abort.signal);
          sent += w.bytes;
          flushed = w.flushed;
        }
        if (st.receiveFrom !== undefined) {
          // Set only now: data that came early waits in the mailbox instead of entering the vector
          // before this step's send was copied.
          this.mailbox.expect(link, data, new Map([[0, { base: 0, length: data.length, reduce: st.receive === 'add' }]]), width);
          await this.mailbox.take(link, 0, data.length, this.timeoutMs, abort.signal);
        }
        if (flushed) {
          await this.flushed(flushed, abort.signal);
          this.outbox.finish(link);
        }
      }
      // A folded-out rank received the sum as halves; the others round theirs alike.
      if (fp16) roundToHalf(data, 0, data.length);
      return sent;
    } catch (err) {
      const reason = (abort.signal.reason as Error | undefined)?.message ?? (err as Error).message;
      abort.abort(err);
      for (const st of schedule) this.outbox.fail(collectiveLinkId(id, st.step), reason);
      for (const pull of incoming) pull.cancel();
      throw new AllreduceError(id, rank, reason);
    } finally {
      for (const st of schedule) this.mailbox.finish(collectiveLinkId(id, st.step));
    }
  }

  /**
   * Tells this rank who may pull the collectives of a job generation (its ring successor and the
   * ranks it sends to in recursive doubling, with the generation's secret) before it starts one,
   * so a pull that arrives early is checked at once and a stranger's is refused without holding anything.
   */
  expectGeneration(jobId: string, generation: number, rank: number, worldSize: number, secret: string): void {
    const toRanks = [...new Set([(rank + 1) % worldSize, ...doublingSinks(rank, worldSize)])];
    this.outbox.expectGeneration(jobId, generation, { toRanks, secret });
  }

  /** Fails every collective, present and future, of one job generation (the coordinator moved on). */
  abandonGeneration(jobId: string, generation: number): void {
    this.abandoned.add(`${jobId}/${generation}`);
    const match = (id: string) => {
      const c = parseCollectiveId(id);
      return c?.jobId === jobId && c.generation === generation;
    };
    const reason = 'generation abandoned by the coordinator';
    for (const [id, abort] of this.running) if (match(id)) abort.abort(new Error(reason));
    this.outbox.failMatching(match, reason);
  }

  /** Data-plane connections this rank has accepted from pullers since it started. */
  get dataConnectionsAccepted(): number {
    return this.dataPlane?.accepted ?? 0;
  }

  /** Ends every held or open stream (UNAVAILABLE), then the server; forced after 2 s. */
  async close(): Promise<void> {
    this.outbox.failMatching(() => true, 'rank shutting down', grpc.status.UNAVAILABLE);
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    this.dataClient.close();
    await this.dataPlane?.close();
    const forced = setTimeout(() => this.server.forceShutdown(), 2000);
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    clearTimeout(forced);
  }
}
