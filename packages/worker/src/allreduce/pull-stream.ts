import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { PullRequest__Output } from '../generated/facenet/v1/PullRequest';
import type { PullResponse } from '../generated/facenet/v1/PullResponse';

/** gRPC metadata key carrying the job generation's collective secret on every Pull. */
export const SECRET_METADATA = 'facenet-collective-secret';

/**
 * The serving side of one successor's pull, whatever carries it (a gRPC Pull stream or a raw
 * TCP data-plane connection): what it asked for, and how to write rounds into it.
 */
export interface PullStream {
  readonly request: { collectiveId: string; toRank: number; secret: string };
  /** The remote host (no port): pulls nobody can vouch for yet are bounded per host. */
  readonly peer: string;
  /** The puller cancelled or the connection broke (not set by this side's own end or deny). */
  readonly gone: boolean;
  onGone(listener: () => void): void;
  /**
   * Queues one chunk of a round. `data` must not change until `flushed` runs: the transport may
   * send it from the caller's memory later. Returns false when the caller should await `drained`.
   */
  write(round: number, offset: number, data: Buffer, flushed: () => void): boolean;
  drained(signal: AbortSignal): Promise<void>;
  /** Every round written: ends the stream normally. */
  end(): void;
  /** Ends the stream with a status (a gRPC code on either transport) the puller reports. */
  deny(code: grpc.status, reason: string): void;
}

type PullCall = grpc.ServerWritableStream<PullRequest__Output, PullResponse>;

/** "ipv4:127.0.0.1:5000", "[::1]:5000" or "127.0.0.1:5000" -> the host part, IPv4-mapped IPv6 as IPv4. */
export function hostOfPeer(peer: string): string {
  const bare = peer.replace(/^(ipv4|ipv6):/, '');
  const m = /^\[(.*)\]:\d+$/.exec(bare) ?? /^(.*):\d+$/.exec(bare);
  return canonicalHost(m ? (m[1] as string) : bare);
}

/** One spelling per host, so both transports count a host's pulls together. */
export function canonicalHost(host: string): string {
  return host.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
}

/** A gRPC Pull server stream as a PullStream. */
export class GrpcPullStream implements PullStream {
  readonly request: PullStream['request'];
  readonly peer: string;
  /** This side ended or denied the stream: grpc-js may still report the call cancelled once the
   * HTTP/2 stream closes, which is not the puller going away. */
  private closedByUs = false;

  constructor(private readonly call: PullCall) {
    this.peer = hostOfPeer(call.getPeer());
    const given = call.metadata.get(SECRET_METADATA)[0];
    this.request = {
      collectiveId: call.request.collective_id,
      toRank: call.request.to_rank,
      secret: typeof given === 'string' ? given : '',
    };
  }

  get gone(): boolean {
    return !this.closedByUs && (this.call.cancelled || this.call.destroyed);
  }

  onGone(listener: () => void): void {
    this.call.once('cancelled', () => {
      if (!this.closedByUs) listener();
    });
  }

  write(round: number, offset: number, data: Buffer, flushed: () => void): boolean {
    return this.call.write({ round, offset, data }, () => flushed());
  }

  async drained(signal: AbortSignal): Promise<void> {
    await once(this.call, 'drain', { signal });
  }

  end(): void {
    this.closedByUs = true;
    this.call.end();
  }

  deny(code: grpc.status, reason: string): void {
    if (this.gone || this.closedByUs) return;
    this.closedByUs = true;
    // grpc-js sends an error status on 'error' (destroy() sends none).
    this.call.emit('error', Object.assign(new Error(reason), { code, details: reason }));
  }
}
