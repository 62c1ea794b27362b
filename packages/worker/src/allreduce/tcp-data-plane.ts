import { once } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { canonicalHost, PullStream } from './pull-stream';
import { RING_TLS_CIPHERS, RING_TLS_MIN_VERSION } from './ring-tls';
import { decodeHello, errorFrame, frameHeader, FrameType, MAX_HELLO_BYTES } from './tcp-frames';

/**
 * The raw TCP data plane, serving side: the bulk bytes of the collectives without gRPC's
 * per-message protobuf encoding, copies and HTTP/2 framing (a profile of the gRPC ring at 64 MB
 * spent a quarter of a rank's CPU there; see README, Performance). A connection carries one
 * collective (or doubling link) at a time, exactly what a gRPC Pull carries, authenticated by
 * the Outbox the same way; after END it waits for the puller's next hello, so the pulling side
 * (tcp-data-client.ts) reuses it instead of connecting again for every collective.
 */

/** PEM contents for mutual TLS, the same certificates the gRPC server uses. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** How long a connection may go without a hello: a new one, or an idle one between collectives
 * (longer than the pulling side keeps an idle connection, so it is the puller that drops it). */
export const HELLO_TIMEOUT_MS = 10_000;

/** One successor's connection on the serving side. */
class TcpPullStream implements PullStream {
  private closedByUs = false;
  readonly peer: string;
  private readonly goneListeners: (() => void)[] = [];

  constructor(
    private readonly socket: net.Socket,
    readonly request: PullStream['request'],
    /** Called after END: the connection waits for the puller's next hello. */
    private readonly next: () => void,
  ) {
    this.peer = canonicalHost(socket.remoteAddress ?? 'unknown');
  }

  get gone(): boolean {
    return !this.closedByUs && this.socket.destroyed;
  }

  onGone(listener: () => void): void {
    const l = () => {
      if (!this.closedByUs) listener();
    };
    this.goneListeners.push(l);
    this.socket.once('close', l);
  }

  /** This stream is over; the connection outlives it, so its listeners go. */
  private close(): void {
    this.closedByUs = true;
    for (const l of this.goneListeners.splice(0)) this.socket.off('close', l);
  }

  write(round: number, offset: number, data: Buffer, flushed: () => void): boolean {
    // Header and payload leave in one writev; the payload is sent from the caller's memory.
    this.socket.cork();
    this.socket.write(frameHeader(FrameType.Data, round, offset, data.length));
    const ok = this.socket.write(data, () => flushed());
    this.socket.uncork();
    return ok;
  }

  async drained(signal: AbortSignal): Promise<void> {
    await once(this.socket, 'drain', { signal });
  }

  end(): void {
    if (this.closedByUs) return;
    this.close();
    if (this.socket.destroyed) return;
    this.socket.write(frameHeader(FrameType.End, 0, 0, 0));
    this.next();
  }

  deny(code: grpc.status, reason: string): void {
    if (this.socket.destroyed || this.closedByUs) return;
    this.close();
    this.socket.end(errorFrame(code, reason));
  }
}

/** Reads a puller's hello, then hands its connection to `accept` (the Outbox); again after each END. */
function handshake(socket: net.Socket, accept: (id: string, stream: PullStream) => void): void {
  let got = Buffer.alloc(0);
  socket.setTimeout(HELLO_TIMEOUT_MS); // DataPlaneServer destroys the socket on 'timeout'
  const refuse = (reason: string) => socket.end(errorFrame(grpc.status.INVALID_ARGUMENT, reason));
  const onData = (chunk: Buffer) => {
    got = Buffer.concat([got, chunk]);
    if (got.length < 4) return;
    const length = got.readUInt32LE(0);
    if (length > MAX_HELLO_BYTES) return finish(() => refuse(`hello of ${length} bytes`));
    if (got.length < 4 + length) return;
    if (got.length > 4 + length) return finish(() => refuse('bytes after the hello'));
    const hello = decodeHello(got.subarray(4));
    finish(() =>
      typeof hello === 'string'
        ? refuse(hello)
        : accept(
            hello.collective_id,
            new TcpPullStream(socket, { collectiveId: hello.collective_id, toRank: hello.to_rank, secret: hello.secret }, () =>
              handshake(socket, accept),
            ),
          ),
    );
  };
  const finish = (then: () => void) => {
    socket.off('data', onData);
    socket.setTimeout(0);
    then();
  };
  socket.on('data', onData);
}

/** The serving side: a TCP (or, with TLS material, mutual-TLS) listener. */
export class DataPlaneServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Connections accepted since start (pullers reuse theirs, so this grows with pullers, not collectives). */
  accepted = 0;

  constructor(accept: (id: string, stream: PullStream) => void, material?: TlsMaterial) {
    const onSocket = (socket: net.Socket) => {
      socket.setNoDelay(true);
      this.accepted++;
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      socket.on('error', () => socket.destroy()); // a reset peer: its stream's onGone reports it
      socket.on('timeout', () => socket.destroy()); // no hello in time (armed only while waiting for one)
      handshake(socket, accept);
    };
    this.server = material
      ? tls.createServer(
          {
            ca: material.ca,
            cert: material.cert,
            key: material.key,
            requestCert: true,
            rejectUnauthorized: true,
            ciphers: RING_TLS_CIPHERS,
            minVersion: RING_TLS_MIN_VERSION,
          },
          onSocket,
        )
      : net.createServer(onSocket);
    this.server.on('tlsClientError', () => {}); // a client without a valid certificate: its socket is closed
  }

  async listen(host: string, port: number): Promise<number> {
    this.server.listen(port, host);
    await once(this.server, 'listening');
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
