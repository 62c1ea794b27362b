import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { AllreduceServiceClient } from '../generated/facenet/v1/AllreduceService';
import type { PullResponse, PullResponse__Output } from '../generated/facenet/v1/PullResponse';
import type { PullRequest__Output } from '../generated/facenet/v1/PullRequest';
import { AllreduceAlgorithm, CollectiveAlgorithm, doublingSinks, parseCollectiveId, RingPlace } from '@facenet/protocol';
import { AllreduceError } from '../errors';
import { AllreduceOptions, compileAllreduceOptions, CompiledAllreduceOptions } from './allreduce-options';
import { chooseAlgorithm, CollectiveRun, doublingAllreduce, RankLinks, ringAllreduce } from './collective-algorithms';
import { Mailbox } from './mailbox';
import { Outbox, PullExpectation } from './outbox';
import { GrpcPullStream, PullStream, SECRET_METADATA } from './pull-stream';
import { DataPlaneServer, TlsMaterial } from './tcp-data-plane';
import { DataPlaneClient, PullHandlers } from './tcp-data-client';
import type { Hello } from './tcp-frames';
import { facenetProto } from './proto';
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

type PullCall = grpc.ServerWritableStream<PullRequest__Output, PullResponse>;

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
export class AllreducePeer implements RankLinks {
  private readonly server = new grpc.Server({ 'grpc.max_send_message_length': MESSAGE_LIMIT });
  readonly mailbox = new Mailbox();
  readonly outbox = new Outbox();
  private readonly clients = new Map<string, AllreduceServiceClient>();
  private readonly options: CompiledAllreduceOptions;
  readonly chunkElements: number;
  readonly timeoutMs: number;
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
  pull(
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

  private checkAbandoned(id: string, rank: number): void {
    const c = parseCollectiveId(id);
    if (c && this.abandoned.has(`${c.jobId}/${c.generation}`))
      throw new AllreduceError(id, rank, 'generation abandoned by the coordinator');
  }

  /** The successor's stream for `id`; its cancellation (the successor failed or died) aborts the collective. */
  async successor(id: string, expect: PullExpectation, abort: AbortController): Promise<PullStream> {
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
      const bytes = algorithm === 'ring' ? await ringAllreduce(this, run) : await doublingAllreduce(this, run);
      return { bytes, algorithm };
    } finally {
      this.running.delete(id);
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
