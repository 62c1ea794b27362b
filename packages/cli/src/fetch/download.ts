import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { DownloadError } from '@facenet/core';

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
  verified: boolean;
}

/**
 * Streams `url` to `dest` through a sha256 hash. The file appears under its name only when
 * complete and (if `expectedSha256` is given) verified; otherwise the partial file is removed.
 */
export async function download(
  url: string,
  dest: string,
  o: { expectedSha256?: string; onProgress?: (bytes: number, total: number | undefined) => void; timeoutMs?: number } = {},
): Promise<DownloadResult> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(o.timeoutMs ?? 30 * 60_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    throw new DownloadError(url, cause ?? (err as Error).message);
  }
  if (!res.ok || !res.body) throw new DownloadError(url, `HTTP ${res.status} ${res.statusText}`);
  const total = Number(res.headers.get('content-length')) || undefined;
  const hash = createHash('sha256');
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      o.onProgress?.(bytes, total);
      done(null, chunk);
    },
  });
  const part = `${dest}.part`;
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), meter, createWriteStream(part));
  } catch (err) {
    await rm(part, { force: true });
    throw new DownloadError(url, `transfer failed after ${bytes} bytes: ${(err as Error).message}`);
  }
  const sha256 = hash.digest('hex');
  if (o.expectedSha256 && sha256 !== o.expectedSha256.toLowerCase()) {
    await rm(part, { force: true });
    throw new DownloadError(url, `sha256 mismatch: got ${sha256}, expected ${o.expectedSha256}`);
  }
  await rename(part, dest);
  return { path: dest, bytes, sha256, verified: Boolean(o.expectedSha256) };
}
