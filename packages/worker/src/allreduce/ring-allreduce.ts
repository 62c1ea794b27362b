import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { AllreduceServiceClient } from '../generated/facenet/v1/AllreduceService';
import type { ExchangeRequest__Output } from '../generated/facenet/v1/ExchangeRequest';
import type { ExchangeResponse } from '../generated/facenet/v1/ExchangeResponse';
import { AllreduceError } from '../errors';
import { Mailbox } from './mailbox';
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
  /** How long a rank waits for its predecessor's data before aborting the step. @default 60000 */
  timeoutMs?: number;
}

export interface AllreduceStats {
  bytes: number;
  ms: number;
}

const MESSAGE_LIMIT = 8 << 20;

/**
 * One rank's side of the gradient ring: a gRPC server receiving from the predecessor into a
 * mailbox, and clients streaming to successors. `allreduce` sums a vector across the ring in
 * place (reduce-scatter then all-gather, 2(W-1)/W of the vector sent per rank).
 */
export class AllreducePeer {
  private readonly server = new grpc.Server({ 'grpc.max_receive_message_length': MESSAGE_LIMIT });
  private readonly mailbox = new Mailbox();
  private readonly clients = new Map<string, AllreduceServiceClient>();
  private readonly chunkElements: number;
  /** "<job>/<generation>" pairs the coordinator abandoned: their collectives fail at once. */
  private readonly abandoned = new Set<string>();
  private readonly timeoutMs: number;
  address = '';

  constructor(private readonly options: AllreducePeerOptions = {}) {
    this.chunkElements = Math.max(1, Math.floor((options.chunkBytes ?? 1 << 20) / 4));
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.server.addService(facenetProto().facenet.v1.AllreduceService.service, {
      Exchange: (call: grpc.ServerReadableStream<ExchangeRequest__Output, ExchangeResponse>, callback: grpc.sendUnaryData<ExchangeResponse>) => {
        let bytes = 0;
        let failed = false;
        call.on('data', (m: ExchangeRequest__Output) => {
          if (failed) return;
          try {
            bytes += 4 * this.mailbox.deliver(m.collective_id, m.round, m.offset, m.data);
          } catch (err) {
            failed = true;
            this.mailbox.fail(m.collective_id, err as Error);
            callback({ code: grpc.status.INVALID_ARGUMENT, details: (err as Error).message });
          }
        });
        call.on('end', () => {
          if (!failed) callback(null, { bytes_received: bytes });
        });
        call.on('error', () => undefined); // a predecessor that dies shows up as the receiver's timeout
      },
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
      c = new Ctor(address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': MESSAGE_LIMIT, 'grpc.max_receive_message_length': MESSAGE_LIMIT });
      this.clients.set(address, c);
    }
    return c;
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
    const [job, , generation] = id.split('/');
    if (this.abandoned.has(`${job}/${generation}`)) throw new AllreduceError(id, rank, 'generation abandoned by the coordinator');
    const next = world[(rank + 1) % W] as string;
    const segments = segmentBounds(data.length, W);
    let sendError: Error | undefined;
    const call = this.client(next).Exchange((err) => {
      if (err) {
        sendError = err;
        this.mailbox.fail(id, new Error(`successor ${next}: ${err.message}`));
      }
    });
    let sent = 0;
    try {
      for (const step of ringSchedule(rank, W)) {
        const [s0, s1] = segments[step.send] as [number, number];
        for (let off = s0; off < s1; off += this.chunkElements) {
          const end = Math.min(s1, off + this.chunkElements);
          const bytes = Buffer.from(data.buffer, data.byteOffset + off * 4, (end - off) * 4);
          sent += bytes.length;
          if (!call.write({ collective_id: id, from_rank: rank, round: step.round, offset: off - s0, data: bytes })) await once(call, 'drain');
          if (sendError) throw sendError;
        }
        const [r0, r1] = segments[step.receive] as [number, number];
        const chunks = await this.mailbox.take(id, step.round, r1 - r0, this.timeoutMs);
        for (const { offset, values } of chunks) {
          const base = r0 + offset;
          if (step.reduce) for (let i = 0; i < values.length; i++) data[base + i] = (data[base + i] as number) + (values[i] as number);
          else data.set(values, base);
        }
      }
      call.end();
      return { bytes: sent, ms: performance.now() - t0 };
    } catch (err) {
      call.cancel();
      throw new AllreduceError(id, rank, (err as Error).message);
    } finally {
      this.mailbox.finish(id);
    }
  }

  /** Aborts a collective in progress. */
  abort(id: string, reason: string): void {
    this.mailbox.fail(id, new Error(reason));
  }

  /** Fails every collective, present and future, of one job generation (the coordinator moved on). */
  abandonGeneration(jobId: string, generation: number): void {
    this.abandoned.add(`${jobId}/${generation}`);
    this.mailbox.failMatching((id) => id.startsWith(`${jobId}/`) && id.endsWith(`/${generation}`), new Error('generation abandoned by the coordinator'));
  }

  async close(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
  }
}
