/**
 * Chunks received from the ring predecessor, by collective and round. Chunks can arrive before
 * this rank starts the same collective (its predecessor is faster); they wait here until
 * `take` asks for the round, with the segment length only the local side knows.
 */
interface RoundBuffer {
  chunks: { offset: number; values: Float32Array }[];
  received: number;
  waiter?: { expected: number; resolve: () => void };
}

interface Collective {
  rounds: Map<number, RoundBuffer>;
  createdAt: number;
  failure?: Error;
  onFailure?: (err: Error) => void;
}

export class Mailbox {
  private readonly collectives = new Map<string, Collective>();

  private entry(id: string): Collective {
    let c = this.collectives.get(id);
    if (!c) {
      c = { rounds: new Map(), createdAt: Date.now() };
      this.collectives.set(id, c);
      this.collectGarbage();
    }
    return c;
  }

  private round(c: Collective, round: number): RoundBuffer {
    let r = c.rounds.get(round);
    if (!r) {
      r = { chunks: [], received: 0 };
      c.rounds.set(round, r);
    }
    return r;
  }

  /** Stores a chunk. Throws on an offset that repeats or overruns what the round expects. */
  deliver(id: string, round: number, offset: number, bytes: Buffer): number {
    const c = this.entry(id);
    if (c.failure) return 0;
    const r = this.round(c, round);
    // Copy: gRPC's buffer may be unaligned for float32 and is reused.
    const values = new Float32Array(bytes.byteLength / 4);
    new Uint8Array(values.buffer).set(bytes);
    if (r.chunks.some((ch) => ch.offset === offset)) throw new Error(`round ${round}: duplicate chunk at offset ${offset}`);
    if (r.waiter && offset + values.length > r.waiter.expected) throw new Error(`round ${round}: chunk at ${offset} overruns the segment of ${r.waiter.expected}`);
    r.chunks.push({ offset, values });
    r.received += values.length;
    if (r.waiter && r.received >= r.waiter.expected) r.waiter.resolve();
    return values.length;
  }

  /** Waits until a round's `expected` elements are all here and returns its chunks. */
  async take(id: string, round: number, expected: number, timeoutMs: number): Promise<{ offset: number; values: Float32Array }[]> {
    const c = this.entry(id);
    const r = this.round(c, round);
    if (c.failure) throw c.failure;
    if (r.received < expected) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for round ${round} (${r.received}/${expected} elements)`)), timeoutMs);
        const done = (err?: Error) => {
          clearTimeout(timer);
          if (err) reject(err);
          else resolve();
        };
        r.waiter = { expected, resolve: () => done() };
        c.onFailure = (err) => done(err);
      });
    }
    if (r.received !== expected) throw new Error(`round ${round}: received ${r.received} elements, expected ${expected}`);
    c.rounds.delete(round);
    return r.chunks;
  }

  /** Fails a collective: its waiter rejects and later chunks are dropped. */
  fail(id: string, err: Error): void {
    const c = this.entry(id);
    c.failure = err;
    c.onFailure?.(err);
  }

  /** Fails every open collective whose id matches (e.g. all steps of one job generation). */
  failMatching(match: (id: string) => boolean, err: Error): void {
    for (const id of this.collectives.keys()) if (match(id)) this.fail(id, err);
  }

  finish(id: string): void {
    this.collectives.delete(id);
  }

  /** Collectives nobody finished (an aborted step) are dropped after five minutes. */
  private collectGarbage(): void {
    const cutoff = Date.now() - 5 * 60_000;
    for (const [id, c] of this.collectives) if (c.createdAt < cutoff) this.collectives.delete(id);
  }
}
