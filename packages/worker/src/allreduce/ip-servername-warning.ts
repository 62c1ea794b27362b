/**
 * grpc-js sends the peer's address as TLS SNI even when it is an IP address (channel-credentials.ts:
 * `servername = remoteHost`), and Node warns about that once per process (DEP0123). It is
 * harmless here: the server ignores SNI and the certificate is checked against the IP all the
 * same. Every worker printed the warning on its first collective over mutual TLS; this drops that
 * one warning and passes every other on. (The raw data plane sends no SNI for an IP: tcp-data-client.ts.)
 */
let installed = false;

export function dropIpServerNameWarning(): void {
  if (installed) return;
  installed = true;
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const options = rest[0];
    const code = typeof options === 'object' && options !== null ? (options as { code?: string }).code : rest[1];
    if (code === 'DEP0123') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}
