import { ConfigError } from '@facenet/core';

export interface AllreduceOptions {
  /** Interface the allreduce server listens on. @default '127.0.0.1' */
  host?: string;
  /** Port; 0 picks a free one. @default 0 */
  port?: number;
  /** Address other ranks dial (differs from host:port behind NAT or in Kubernetes). @default host:boundPort */
  advertiseAddress?: string;
  /**
   * How the rounds travel: 'tcp' on a raw TCP data plane (TLS when configured) whose port the
   * predecessor announces over gRPC, falling back to gRPC for a predecessor without one; 'grpc'
   * through gRPC Pull streams only. @default 'tcp'
   */
  transport?: 'tcp' | 'grpc';
  /** Port of the TCP data plane; 0 picks a free one. @default 0 */
  dataPort?: number;
  /** Bytes per chunk on the wire (gRPC rejects messages over 4 MiB by default). @default 1 MiB */
  chunkBytes?: number;
  /** HTTP/2 receive window of the pulling side; small windows cap throughput. @default 32 MiB */
  windowBytes?: number;
  /** How long a rank waits for its predecessor's next round before aborting the step. @default 120000 */
  timeoutMs?: number;
  /**
   * Mutual TLS between ranks: PEM files of the CA that signs every worker's certificate, and this
   * worker's certificate and key. The server requires a client certificate from the same CA; the
   * certificate's names must cover the addresses peers dial. @default none (plaintext; the
   * collective secret still authenticates every pull)
   */
  tls?: { ca: string; cert: string; key: string };
}

export type CompiledAllreduceOptions = Required<Omit<AllreduceOptions, 'advertiseAddress' | 'tls'>> & {
  advertiseAddress: string | undefined;
  tls: AllreduceOptions['tls'];
};

/** The allreduce's defaults, in one place for the peer and the worker that configures it. */
export function compileAllreduceOptions(o: AllreduceOptions = {}): CompiledAllreduceOptions {
  const c: CompiledAllreduceOptions = {
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 0,
    transport: o.transport ?? 'tcp',
    dataPort: o.dataPort ?? 0,
    advertiseAddress: o.advertiseAddress,
    chunkBytes: o.chunkBytes ?? 1 << 20,
    windowBytes: o.windowBytes ?? 32 << 20,
    timeoutMs: o.timeoutMs ?? 120_000,
    tls: o.tls,
  };
  if (c.tls)
    for (const k of ['ca', 'cert', 'key'] as const)
      if (!c.tls[k])
        throw new ConfigError(`allreduce option tls.${k}`, `is required with TLS (FACENET_TLS_CA, FACENET_TLS_CERT, FACENET_TLS_KEY)`);
  for (const k of ['port', 'dataPort'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 0 || c[k] > 65535) throw new ConfigError(`allreduce option ${k}`, `must be 0-65535, got ${c[k]}`);
  }
  if (c.transport !== 'tcp' && c.transport !== 'grpc')
    throw new ConfigError(
      `allreduce option transport`,
      `must be 'tcp' or 'grpc' (FACENET_ALLREDUCE_TRANSPORT), got ${String(c.transport)}`,
    );
  for (const k of ['chunkBytes', 'windowBytes', 'timeoutMs'] as const) {
    if (!(Number.isFinite(c[k]) && c[k] > 0)) throw new ConfigError(`allreduce option ${k}`, `must be > 0, got ${c[k]}`);
  }
  if (c.chunkBytes % 4 !== 0 || c.chunkBytes > 4 << 20)
    throw new ConfigError(`allreduce option chunkBytes`, `must be a multiple of 4 up to 4 MiB, got ${c.chunkBytes}`);
  return c;
}
