import { once } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { canonicalHost, PullStream } from './pull-stream';
import { decodeHello, encodeHello, errorFrame, FrameReader, FrameSink, frameHeader, FrameType, Hello, MAX_HELLO_BYTES } from './tcp-frames';

/**
 * The raw TCP data plane: the bulk bytes of the ring without gRPC's per-message protobuf
 * encoding, copies and HTTP/2 framing (a profile of the gRPC ring at 64 MB spent a quarter of a
 * rank's CPU there; see README, Performance). One connection per collective, successor to
 * rank, carrying exactly what a gRPC Pull carries; the Outbox authenticates it the same way.
 */

/** PEM contents for mutual TLS, the same certificates the gRPC server uses. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

const HELLO_TIMEOUT_MS = 10_000;
/** Bytes read per syscall on the pulling side: one reused buffer per connection. */
const READ_BUFFER_BYTES = 4 << 20;

/** One successor's connection on the serving side. */
class TcpPullStream implements PullStream {
  private closedByUs = false;
  readonly peer: string;

  constructor(
    private readonly socket: net.Socket,
    readonly request: PullStream['request'],
  ) {
    this.peer = canonicalHost(socket.remoteAddress ?? 'unknown');
  }

  get gone(): boolean {
    return !this.closedByUs && this.socket.destroyed;
  }

  onGone(listener: () => void): void {
    this.socket.once('close', () => {
      if (!this.closedByUs) listener();
    });
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
    this.closedByUs = true;
    this.socket.end(frameHeader(FrameType.End, 0, 0, 0));
  }

  deny(code: grpc.status, reason: string): void {
    if (this.socket.destroyed || this.closedByUs) return;
    this.closedByUs = true;
    this.socket.end(errorFrame(code, reason));
  }
}

/** Reads the successor's hello, then hands its connection to `accept` (the Outbox). */
function handshake(socket: net.Socket, accept: (id: string, stream: PullStream) => void): void {
  let got = Buffer.alloc(0);
  socket.setTimeout(HELLO_TIMEOUT_MS, () => socket.destroy());
  socket.on('error', () => socket.destroy()); // a reset peer: its stream's onGone reports it
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
            new TcpPullStream(socket, { collectiveId: hello.collective_id, toRank: hello.to_rank, secret: hello.secret }),
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

  constructor(accept: (id: string, stream: PullStream) => void, material?: TlsMaterial) {
    const onSocket = (socket: net.Socket) => {
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      handshake(socket, accept);
    };
    this.server = material
      ? tls.createServer({ ca: material.ca, cert: material.cert, key: material.key, requestCert: true, rejectUnauthorized: true }, onSocket)
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

export interface PullHandlers extends FrameSink {
  /** The connection failed or closed before END or ERROR. */
  failed(err: Error): void;
}

/**
 * Pulls one collective from the rank at host:port. DATA, END and ERROR frames go to `handlers`;
 * a connection that breaks first goes to `failed`. Returns a cancel that closes the connection
 * (the serving rank sees its successor gone).
 */
export function pullOverTcp(
  host: string,
  port: number,
  hello: Hello,
  elementBytes: number,
  handlers: PullHandlers,
  material?: TlsMaterial,
): { cancel(): void } {
  let settled = false;
  const settle = (then: () => void) => {
    if (settled) return;
    settled = true;
    then();
  };
  const sink: FrameSink = {
    data: (round, offset, bytes) => handlers.data(round, offset, bytes),
    end: () => settle(() => handlers.end()),
    error: (code, reason) => settle(() => handlers.error(code, reason)),
  };
  const reader = new FrameReader(sink, elementBytes);
  const consume = (bytes: Buffer) => {
    try {
      reader.push(bytes);
    } catch (err) {
      settle(() => handlers.failed(new Error(`malformed data-plane stream: ${(err as Error).message}`)));
      socket.destroy();
    }
  };
  let socket: net.Socket;
  if (material) {
    socket = tls.connect({
      host,
      port,
      ca: material.ca,
      cert: material.cert,
      key: material.key,
      servername: net.isIP(host) ? undefined : host,
    });
    socket.on('data', consume);
  } else {
    // One reused read buffer: received elements are added into the vector (or copied) at once.
    const buffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    socket = net.connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer,
        callback: (n: number, buf: Uint8Array) => {
          consume(Buffer.from(buf.buffer, buf.byteOffset, n));
          return true;
        },
      },
    });
  }
  socket.write(encodeHello(hello));
  socket.on('error', (err) => settle(() => handlers.failed(err)));
  socket.on('close', () => settle(() => handlers.failed(new Error('connection closed before the collective ended'))));
  return {
    cancel: () => {
      settled = true;
      socket.destroy();
    },
  };
}
