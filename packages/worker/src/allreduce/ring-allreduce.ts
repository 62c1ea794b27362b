import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { AllreduceServiceClient } from '../generated/facenet/v1/AllreduceService';
import type { PullResponse, PullResponse__Output } from '../generated/facenet/v1/PullResponse';
import type { PullRequest__Output } from '../generated/facenet/v1/PullRequest';
import { AllreduceError } from '../errors';
import { Mailbox } from './mailbox';
import { Outbox } from './outbox';
import { facenetProto } from './proto';
import { ringSchedule, segmentBounds } from './segments';

export interface AllreducePeerOptions {
  /** Interface to listen on. @default '127.0.0.1' */
  host?: string;
  /** Port; 0 picks a free one. @default 0 */
  port?: number;
  /** Address other ranks should dial (differs from host:port behind NAT or in Kubernetes). @default host:boundPort */
  advertiseAddress?: string;
  /** Bytes per chunk on the wire (gRPC rejects messages over 4 MiB by default). @default 1 MiB */
  chunkBytes?: number;
  /** HTTP/2 receive window of the pulling side; small windows cap throughput. @default 32 MiB */
  windowBytes?: number;
  /** How long a rank waits for its predecessor's data before aborting the step. @default 60000 */
  timeoutMs?: number;
}

export interface AllreduceStats {
  bytes: number;
  ms: number;
}

const MESSAGE_LIMIT = 8 << 20;

/**
 * One rank's side of the gradient ring. Each rank serves Pull (its successor pulls the rounds
 * it writes) and pulls from its predecessor into a mailbox. `allreduce` sums a vector across
 * the ring in place: reduce-scatter then all-gather, 2(W-1)/W of the vector sent per rank.
 */
export class AllreducePeer {
  private readonly server = new grpc.Server({ 'grpc.max_send_message_length': MESSAGE_LIMIT });
  private readonly mailbox = new Mailbox();
  private readonly outbox = new Outbox();
  private readonly clients = new Map<string, AllreduceServiceClient>();
  private readonly chunkElements: number;
  private readonly timeoutMs: number;
  /** "<job>/<generation>" pairs the coordinator abandoned: their collectives fail at once. */
  private readonly abandoned = new Set<string>();
  address = '';

  constructor(private readonly options: AllreducePeerOptions = {}) {
    this.chunkElements = Math.max(1, Math.floor((options.chunkBytes ?? 1 << 20) / 4));
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.server.addService(facenetProto().facenet.v1.AllreduceService.service, {
      Pull: (call: grpc.ServerWritableStream<PullRequest__Output, PullResponse>) => this.outbox.attach(call.request.collective_id, call),
    });
  }

  /** Starts the server; resolves to the address other ranks dial. */
  async start(): Promise<string> {
    const host = this.options.host ?? '127.0.0.1';
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${host}:${this.options.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.address = this.options.advertiseAddress ?? `${host}:${port}`;
    return this.address;
  }

  private client(address: string): AllreduceServiceClient {
    let c = this.clients.get(address);
    if (!c) {
      const Ctor = facenetProto().facenet.v1.AllreduceService;
      c = new Ctor(address, grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': MESSAGE_LIMIT,
        'grpc-node.flow_control_window': this.options.windowBytes ?? 32 << 20,
      });
      this.clients.set(address, c);
    }
    return c;
  }

  /** Starts receiving collective `id` from `address` into the mailbox. */
  private pull(address: string, id: string, rank: number): grpc.ClientReadableStream<PullResponse__Output> {
    const stream = this.client(address).Pull({ collective_id: id, to_rank: rank });
    stream.on('data', (c: PullResponse__Output) => {
      try {
        this.mailbox.deliver(id, c.round, c.offset, c.data);
      } catch (err) {
        this.mailbox.fail(id, err as Error);
        stream.cancel();
      }
    });
    stream.on('error', (err: grpc.ServiceError) => {
      if (err.code !== grpc.status.CANCELLED) this.mailbox.fail(id, new Error(`predecessor ${address}: ${err.details || err.message}`));
    });
    return stream;
  }

  /** Writes data[s0, s1) as one round into the successor's stream, in bounded chunks. */
  private async write(out: grpc.ServerWritableStream<PullRequest__Output, PullResponse>, round: number, data: Float32Array, s0: number, s1: number): Promise<number> {
    let bytes = 0;
    for (let off = s0; off < s1; off += this.chunkElements) {
      const end = Math.min(s1, off + this.chunkElements);
      const chunk = Buffer.from(data.buffer, data.byteOffset + off * 4, (end - off) * 4);
      bytes += chunk.length;
      if (out.destroyed) throw new Error('successor went away');
      if (!out.write({ round, offset: off - s0, data: chunk })) await once(out, 'drain');
    }
    return bytes;
  }

  /** Waits until a round from the predecessor has been applied (the mailbox adds or copies on arrival). */
  private receive(id: string, round: number, length: number): Promise<void> {
    return this.mailbox.take(id, round, length, this.timeoutMs);
  }

  private checkAbandoned(id: string, rank: number): void {
    const [job, , generation] = id.split('/');
    if (this.abandoned.has(`${job}/${generation}`)) throw new AllreduceError(id, rank, 'generation abandoned by the coordinator');
  }

  /**
   * Sums `data` across the ranks of `world` (addresses in rank order) in place. Every rank
   * calls this with the same collective id and vector length. Throws AllreduceError on any
   * failure; the vector's contents are then undefined and must not be applied.
   */
  async allreduce(id: string, data: Float32Array, rank: number, world: string[]): Promise<AllreduceStats> {
    const W = world.length;
    const t0 = performance.now();
    if (W <= 1) return { bytes: 0, ms: 0 };
    this.checkAbandoned(id, rank);
    const segments = segmentBounds(data.length, W);
    const schedule = ringSchedule(rank, W);
    this.mailbox.expect(id, data, new Map(schedule.map((st) => {
      const [r0, r1] = segments[st.receive] as [number, number];
      return [st.round, { base: r0, length: r1 - r0, reduce: st.reduce }];
    })));
    const incoming = this.pull(world[(rank - 1 + W) % W] as string, id, rank);
    let sent = 0;
    try {
      const out = await this.outbox.stream(id, this.timeoutMs);
      for (const step of schedule) {
        const [s0, s1] = segments[step.send] as [number, number];
        sent += await this.write(out, step.round, data, s0, s1);
        const [r0, r1] = segments[step.receive] as [number, number];
        await this.receive(id, step.round, r1 - r0);
      }
      this.outbox.finish(id);
      return { bytes: sent, ms: performance.now() - t0 };
    } catch (err) {
      this.outbox.fail(id, (err as Error).message);
      incoming.cancel();
      throw new AllreduceError(id, rank, (err as Error).message);
    } finally {
      this.mailbox.finish(id);
    }
  }

  /**
   * The star baseline for benchmarks: every rank sends its whole vector to rank 0, which sums
   * and sends the result back. Rank 0's link carries 2(W-1) vectors, against 2(W-1)/W for the ring.
   */
  async starAllreduce(id: string, data: Float32Array, rank: number, world: string[]): Promise<AllreduceStats> {
    const W = world.length;
    const t0 = performance.now();
    if (W <= 1) return { bytes: 0, ms: 0 };
    let sent = 0;
    const offer = async (cid: string) => {
      const out = await this.outbox.stream(cid, this.timeoutMs);
      sent += await this.write(out, 0, data, 0, data.length);
      this.outbox.finish(cid);
    };
    const collect = async (cid: string, from: string, reduce: boolean) => {
      this.mailbox.expect(cid, data, new Map([[0, { base: 0, length: data.length, reduce }]]));
      this.pull(from, cid, rank);
      await this.receive(cid, 0, data.length);
      this.mailbox.finish(cid);
    };
    try {
      if (rank === 0) {
        for (let r = 1; r < W; r++) await collect(`${id}/from${r}`, world[r] as string, true);
        await Promise.all(world.slice(1).map((_, i) => offer(`${id}/to${i + 1}`)));
      } else {
        await offer(`${id}/from${rank}`);
        await collect(`${id}/to${rank}`, world[0] as string, false);
      }
      return { bytes: sent, ms: performance.now() - t0 };
    } catch (err) {
      throw new AllreduceError(id, rank, (err as Error).message);
    }
  }

  /** Fails every collective, present and future, of one job generation (the coordinator moved on). */
  abandonGeneration(jobId: string, generation: number): void {
    this.abandoned.add(`${jobId}/${generation}`);
    const match = (id: string) => id.startsWith(`${jobId}/`) && id.endsWith(`/${generation}`);
    this.mailbox.failMatching(match, new Error('generation abandoned by the coordinator'));
    this.outbox.failMatching(match, 'generation abandoned by the coordinator');
  }

  async close(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }
}
