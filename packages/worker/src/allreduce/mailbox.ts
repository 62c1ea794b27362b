/**
 * Data received from the ring predecessor, by collective and round. Once the local side has
 * said where a round goes (`expect`), each chunk is added or copied straight into the target
 * vector as it arrives: no per-chunk allocation and no second pass. Chunks that arrive before
 * that (the predecessor is ahead) are buffered and applied when the expectation is set.
 */
interface Target {
  base: number;
  length: number;
  reduce: boolean;
}

interface RoundState {
  early: { offset: number; values: Float32Array }[];
  received: number;
  target?: Target;
  waiter?: () => void;
}

interface Collective {
  rounds: Map<number, RoundState>;
  data?: Float32Array;
  createdAt: number;
  failure?: Error;
  onFailure?: (err: Error) => void;
}

/** Reused, 4-byte-aligned staging for payloads whose bytes are not float-aligned. */
let scratch = new Float32Array(0);

function floatsOf(bytes: Buffer): Float32Array {
  const n = bytes.byteLength / 4;
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  if (scratch.length < n) scratch = new Float32Array(n);
  new Uint8Array(scratch.buffer, 0, bytes.byteLength).set(bytes);
  return scratch.subarray(0, n);
}

function apply(data: Float32Array, t: Target, offset: number, values: Float32Array): void {
  if (offset + values.length > t.length) throw new Error(`chunk at ${offset} (+${values.length}) overruns the segment of ${t.length}`);
  const base = t.base + offset;
  if (t.reduce) for (let i = 0; i < values.length; i++) data[base + i] = (data[base + i] as number) + (values[i] as number);
  else data.set(values, base);
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

  private round(c: Collective, round: number): RoundState {
    let r = c.rounds.get(round);
    if (!r) {
      r = { early: [], received: 0 };
      c.rounds.set(round, r);
    }
    return r;
  }

  /** Where each round's data goes in `data` (segment base and length, add or copy). */
  expect(id: string, data: Float32Array, targets: Map<number, Target>): void {
    const c = this.entry(id);
    c.data = data;
    for (const [round, target] of targets) {
      const r = this.round(c, round);
      r.target = target;
      for (const e of r.early) apply(data, target, e.offset, e.values);
      r.early = [];
      if (r.received >= target.length) r.waiter?.();
    }
  }

  /** Applies (or buffers) one chunk. Throws when it overruns its segment. */
  deliver(id: string, round: number, offset: number, bytes: Buffer): number {
    const c = this.entry(id);
    if (c.failure) return 0;
    const r = this.round(c, round);
    const values = floatsOf(bytes);
    if (r.target && c.data) apply(c.data, r.target, offset, values);
    else r.early.push({ offset, values: values.slice() });
    r.received += values.length;
    if (r.target && r.received >= r.target.length) r.waiter?.();
    return values.length;
  }

  /** Resolves when a round's `expected` elements have all been applied. */
  async take(id: string, round: number, expected: number, timeoutMs: number): Promise<void> {
    const c = this.entry(id);
    const r = this.round(c, round);
    if (c.failure) throw c.failure;
    if (r.received < expected || !r.target) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for round ${round} (${r.received}/${expected} elements)`)), timeoutMs);
        r.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
        c.onFailure = (err) => {
          clearTimeout(timer);
          reject(err);
        };
        if (r.target && r.received >= expected) r.waiter();
      });
    }
    if (r.received !== expected) throw new Error(`round ${round}: received ${r.received} elements, expected ${expected}`);
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
