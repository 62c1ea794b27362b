import { abortableWait } from './abortable-wait';
import { encodeHalves } from './fp16';
import type { PullStream } from './pull-stream';

/**
 * Writes data[s0, s1) as one round into the successor's stream, in bounded chunks that are
 * views on the vector (no copy). The transport may read a queued chunk later (grpc-js
 * serializes it, the TCP socket sends from the vector's memory), so the vector must not change
 * or move until then: `flushed` resolves once the round's last chunk has been taken (a stream's
 * chunks are taken in order), and the collective waits for the last round's before it hands the
 * vector back. Within a collective a segment sent is only overwritten after its data has come
 * round the ring, so it was taken long before.
 */
export async function writeRound(
  out: PullStream,
  round: number,
  data: Float32Array,
  s0: number,
  s1: number,
  fp16: boolean,
  signal: AbortSignal,
  chunkElements: number,
): Promise<{ bytes: number; flushed: Promise<void> }> {
  let bytes = 0;
  let flushed: Promise<void> = Promise.resolve();
  for (let off = s0; off < s1; off += chunkElements) {
    const end = Math.min(s1, off + chunkElements);
    const chunk = fp16 ? encodeHalves(data, off, end) : Buffer.from(data.buffer, data.byteOffset + off * 4, (end - off) * 4);
    bytes += chunk.length;
    signal.throwIfAborted();
    if (out.gone) throw new Error('successor went away');
    let ok = true;
    flushed = new Promise<void>((resolve) => {
      ok = out.write(round, off - s0, chunk, resolve);
    });
    if (!ok) await out.drained(signal);
  }
  return { bytes, flushed };
}

/** Waits until the transport has taken the last chunk written (or the stream is gone, so it never will). */
export async function whenFlushed(last: Promise<void>, signal: AbortSignal, timeoutMs: number): Promise<void> {
  await abortableWait<void>(
    signal,
    timeoutMs,
    () => `successor stream did not take the last round within ${timeoutMs} ms`,
    (done) => {
      void last.then(done);
      return () => {};
    },
  ).catch((err: unknown) => {
    if (!signal.aborted) throw err; // aborted: the stream is gone, so nothing queued will be read
  });
}
