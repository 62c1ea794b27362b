import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { DatasetError } from '../../errors';
import { checkRange, ObjectStore } from './object-store';

export interface RetryOptions {
  /** Tries per request. @default 4 */
  attempts?: number;
  /** First backoff; doubled each retry. @default 200 */
  backoffMs?: number;
  /** One request's time limit. @default 30000 */
  timeoutMs?: number;
}

/** A status worth retrying: the server's trouble, or too many requests. */
const retryable = (status: number) => status >= 500 || status === 429 || status === 408;

/**
 * Objects under an http:// or https:// base, read with Range requests (nginx, a CDN, a bucket's
 * website endpoint). 5xx, timeouts and dropped connections are retried with exponential backoff;
 * a 404 is a clear error naming the object, never retried.
 */
export class HttpStore implements ObjectStore {
  readonly base: string;
  private readonly o: Required<RetryOptions>;

  constructor(base: string, o: RetryOptions = {}) {
    this.base = base.endsWith('/') ? base : `${base}/`;
    this.o = { attempts: o.attempts ?? 4, backoffMs: o.backoffMs ?? 200, timeoutMs: o.timeoutMs ?? 30_000 };
  }

  private async request(name: string, range?: [number, number]): Promise<Response> {
    const url = new URL(name, this.base).toString();
    let last = '';
    for (let attempt = 1; attempt <= this.o.attempts; attempt++) {
      if (attempt > 1) await new Promise((r) => setTimeout(r, this.o.backoffMs * 2 ** (attempt - 2)));
      let res: Response;
      try {
        res = await fetch(url, {
          headers: range ? { range: `bytes=${range[0]}-${range[0] + range[1] - 1}` } : {},
          signal: AbortSignal.timeout(this.o.timeoutMs),
        });
      } catch (err) {
        last = (err as Error).name === 'TimeoutError' ? `no answer in ${this.o.timeoutMs} ms` : (err as Error).message;
        continue;
      }
      if (res.ok) {
        if (range && res.status !== 206) {
          await res.body?.cancel();
          throw new DatasetError(
            `${url}: the server ignored the byte range (HTTP ${res.status}); serve the shards from a server with range requests`,
          );
        }
        return res;
      }
      await res.body?.cancel();
      if (res.status === 404) throw new DatasetError(`${url}: no such object (HTTP 404)`);
      last = `HTTP ${res.status}`;
      if (!retryable(res.status)) break;
    }
    throw new DatasetError(`${url}: ${last} (after ${this.o.attempts} tries)`);
  }

  async read(name: string, offset: number, length: number): Promise<Buffer> {
    checkRange(`${this.base}${name}`, offset, length);
    const res = await this.request(name, [offset, length]);
    const declared = Number(res.headers.get('content-length') ?? length);
    if (declared > length) {
      await res.body?.cancel();
      throw new DatasetError(`${this.base}${name}: the server sent ${declared} bytes for a range of ${length}`);
    }
    const buf = Buffer.from(await res.arrayBuffer());
    if (buf.length !== length) throw new DatasetError(`${this.base}${name}: got ${buf.length} bytes of the ${length} asked for`);
    return buf;
  }

  async open(name: string): Promise<Readable> {
    const res = await this.request(name);
    if (!res.body) throw new DatasetError(`${this.base}${name}: empty answer`);
    return Readable.fromWeb(res.body as unknown as WebReadableStream);
  }
}
