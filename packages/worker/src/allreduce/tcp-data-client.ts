import * as net from 'node:net';
import * as tls from 'node:tls';
import { RING_TLS_CIPHERS, RING_TLS_MIN_VERSION } from './ring-tls';
import { encodeHello, FrameReader, FrameSink, Hello } from './tcp-frames';
import type { TlsMaterial } from './tcp-data-plane';
import { HELLO_TIMEOUT_MS } from './tcp-data-plane';

/** Bytes read per syscall: one reused buffer per connection, at most this... */
const READ_BUFFER_BYTES = 4 << 20;
/** ...and at least this: a small collective's connection does not map 4 MiB it never fills
 * (that allocation, per connection per collective, was most of a 4 KB allreduce's time). */
const MIN_READ_BUFFER_BYTES = 64 << 10;
/** Idle connections kept per serving rank and buffer size, and for how long (shorter than the
 * serving side waits for a hello, so a kept connection is not one the server is about to drop). */
const IDLE_PER_KEY = 4;
const IDLE_MS = HELLO_TIMEOUT_MS / 2;

export interface PullHandlers extends FrameSink {
  /** The connection failed or closed before END or ERROR. */
  failed(err: Error): void;
}

/** What the connection's bytes go to while it carries a pull. */
interface Pulling {
  consume(bytes: Buffer): void;
  failed(err: Error): void;
}

/** One connection to a serving rank's data plane, carrying one pull at a time. */
class DataConnection {
  readonly socket: net.Socket;
  current: Pulling | undefined;
  idleTimer: NodeJS.Timeout | undefined;

  constructor(host: string, port: number, bufferBytes: number, material: TlsMaterial | undefined, onClose: () => void) {
    const consume = (bytes: Buffer) => {
      if (this.current) this.current.consume(bytes);
      else this.socket.destroy(); // the server sends nothing between collectives
    };
    if (material) {
      this.socket = tls.connect({
        host,
        port,
        ca: material.ca,
        cert: material.cert,
        key: material.key,
        // SNI carries host names only: an IP there is a protocol error Node warns about (DEP0123),
        // and undefined means 'the host' to tls.connect. '' sends none; the certificate is still
        // checked against the IP (checkServerIdentity reads `host`).
        servername: net.isIP(host) ? '' : host,
        ciphers: RING_TLS_CIPHERS,
        minVersion: RING_TLS_MIN_VERSION,
      });
      this.socket.setNoDelay(true);
      this.socket.on('data', consume);
    } else {
      // One reused read buffer: received elements are added into the vector (or copied) at once.
      const buffer = Buffer.allocUnsafeSlow(bufferBytes);
      this.socket = net.connect({
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
    this.socket.on('error', (err) => this.current?.failed(err));
    this.socket.on('close', () => {
      this.current?.failed(new Error('connection closed before the collective ended'));
      onClose();
    });
  }
}

/**
 * The pulling side of the TCP data plane. Pulls one collective (or doubling link) from the rank at
 * host:port, over an idle connection to it when there is one: a new connection costs about half a
 * millisecond of CPU on each side (connect, accept, socket setup), more than all the rounds of a
 * small collective, and recursive doubling needs a partner per step. A connection goes back to the
 * idle set only after a clean END; an ERROR frame (the server closes it), a malformed stream or a
 * cancel drop it. A kept connection that fails before any byte arrives (the server dropped it
 * meanwhile) is replaced by a new one once, transparently.
 */
export class DataPlaneClient {
  private readonly idle = new Map<string, DataConnection[]>();
  private readonly open = new Set<DataConnection>();

  constructor(private readonly material?: TlsMaterial) {}

  /**
   * DATA, END and ERROR frames go to `handlers`; a connection that breaks first goes to `failed`.
   * `roundBytes`, the largest round expected, sizes the read buffer. Returns a cancel that closes
   * the connection (the serving rank sees its puller gone).
   */
  pull(
    host: string,
    port: number,
    hello: Hello,
    wire: { elementBytes: number; roundBytes: number },
    handlers: PullHandlers,
  ): { cancel(): void } {
    const bufferBytes = this.material ? 0 : Math.min(READ_BUFFER_BYTES, Math.max(MIN_READ_BUFFER_BYTES, wire.roundBytes + 64));
    const key = `${host}|${port}|${bufferBytes}`;
    let settled = false;
    let conn: DataConnection;
    const settle = (then: () => void) => {
      if (settled) return;
      settled = true;
      then();
    };
    const start = (reusable: boolean) => {
      const kept = reusable ? this.take(key) : undefined;
      conn = kept ?? this.connect(host, port, bufferBytes, key);
      let received = false;
      const sink: FrameSink = {
        data: (round, offset, bytes) => handlers.data(round, offset, bytes),
        end: () =>
          settle(() => {
            handlers.end();
            this.release(key, conn);
          }),
        error: (code, reason) => settle(() => handlers.error(code, reason)),
      };
      const reader = new FrameReader(sink, wire.elementBytes);
      conn.current = {
        consume: (bytes) => {
          received = true;
          try {
            reader.push(bytes);
          } catch (err) {
            settle(() => handlers.failed(new Error(`malformed data-plane stream: ${(err as Error).message}`)));
            conn.socket.destroy();
          }
        },
        failed: (err) => {
          if (settled) return;
          conn.current = undefined;
          if (kept && !received) return start(false);
          settle(() => handlers.failed(err));
        },
      };
      conn.socket.write(encodeHello(hello));
    };
    start(true);
    return {
      cancel: () => {
        settled = true;
        conn.current = undefined;
        conn.socket.destroy();
      },
    };
  }

  private connect(host: string, port: number, bufferBytes: number, key: string): DataConnection {
    const conn: DataConnection = new DataConnection(host, port, bufferBytes, this.material, () => {
      this.open.delete(conn);
      clearTimeout(conn.idleTimer);
      const list = this.idle.get(key);
      if (list?.includes(conn))
        this.idle.set(
          key,
          list.filter((c) => c !== conn),
        );
    });
    this.open.add(conn);
    return conn;
  }

  private take(key: string): DataConnection | undefined {
    const list = this.idle.get(key);
    const conn = list?.pop();
    if (conn) clearTimeout(conn.idleTimer);
    return conn;
  }

  /** After a clean END: keep the connection for the next pull, or close it when enough are kept. */
  private release(key: string, conn: DataConnection): void {
    conn.current = undefined;
    const list = this.idle.get(key) ?? [];
    if (conn.socket.destroyed || list.length >= IDLE_PER_KEY) {
      conn.socket.destroy();
      return;
    }
    conn.idleTimer = setTimeout(() => conn.socket.destroy(), IDLE_MS).unref();
    list.push(conn);
    this.idle.set(key, list);
  }

  close(): void {
    for (const conn of this.open) conn.socket.destroy();
    this.open.clear();
    this.idle.clear();
  }
}
