import IORedis from 'ioredis';
import { decodeFailure } from '@facenet/core';
import { entryFields, INBOX_MAX_LENGTH } from './work-inbox';
import { logThrottled } from './service-runtime';
import { signItem } from './work-signing';

/** How long one XREAD of the results blocks before it is issued again. */
const BLOCK_MS = 1000;
/** Results taken per read: at 256 ranks one read collects a whole step's. */
const READ_COUNT = 1000;
/** An item nobody waits for any more (its sender gave up before waiting) is forgotten after this. */
const UNCLAIMED_MS = 3_600_000;

interface Waiter {
  sentAt: number;
  answer: Promise<unknown>;
  settle: (answer: { ok: string } | { failure: string }) => void;
  reject: (err: Error) => void;
}

/**
 * The coordinator's end of the inboxes (work-inbox.ts): sends items and collects their answers
 * from the one results stream with one blocking XREAD, whatever the number of workers. Every
 * item's waiter is registered before the item is sent, and the reader starts from the stream's
 * end as it was before the first send, so no answer can be missed however late a wait begins.
 */
export class WorkDispatch {
  private readonly connection: IORedis;
  private readonly waiters = new Map<string, Waiter>();
  private started: Promise<void> | undefined;
  private lastId = '0-0';
  private closing = false;
  private loop: Promise<void> | undefined;
  private lastSweep = Date.now();

  constructor(
    private readonly redis: IORedis,
    private readonly results: string,
    private readonly log: (line: string) => void,
    /** Signs every item sent (work-signing.ts); the workers holding the same key refuse any other. */
    private readonly signingKey: Buffer | undefined = undefined,
  ) {
    this.connection = redis.duplicate({ maxRetriesPerRequest: null });
    this.connection.on('error', () => undefined); // reported by the loop's failed reads
  }

  private start(): Promise<void> {
    this.started ??= (async () => {
      const [last] = (await this.redis.xrevrange(this.results, '+', '-', 'COUNT', 1)) as [string, string[]][];
      this.lastId = last?.[0] ?? '0-0';
      this.loop = this.run();
    })();
    return this.started;
  }

  /**
   * Puts one item in an inbox, its answer awaited from now on (take it with `answer`). An id
   * already waited for is not sent twice.
   */
  async send(inbox: string, id: string, data: unknown): Promise<void> {
    if (this.closing) throw new Error('the dispatcher is closed');
    await this.start();
    if (this.waiters.has(id)) return;
    let settle!: Waiter['settle'];
    let reject!: Waiter['reject'];
    const answer = new Promise<unknown>((res, rej) => {
      reject = rej;
      settle = (a) => {
        if (!('ok' in a)) return rej(decodeFailure(a.failure));
        try {
          res(JSON.parse(a.ok) as unknown);
        } catch {
          rej(new Error(`the answer to ${id} is not JSON: ${a.ok.slice(0, 200)}`));
        }
      };
    });
    answer.catch(() => undefined); // taken by `answer`, or by nobody
    this.waiters.set(id, { sentAt: Date.now(), answer, settle, reject });
    try {
      const text = JSON.stringify(data);
      const sig = this.signingKey ? ['sig', signItem(this.signingKey, id, text)] : [];
      await this.redis.xadd(inbox, 'MAXLEN', INBOX_MAX_LENGTH, '*', 'id', id, 'data', text, ...sig);
    } catch (err) {
      this.waiters.delete(id);
      throw err;
    }
    this.sweep();
  }

  /**
   * The item's return value, or its failure as the worker's own error class (decoded from the
   * failure's envelope); rejects after `timeoutMs`, or at once when the dispatcher closes.
   */
  async answer(id: string, timeoutMs: number, describe: () => string = () => id): Promise<unknown> {
    const w = this.waiters.get(id);
    if (!w) throw new Error(`${id} was never sent`);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        w.answer,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no result from ${describe()} after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.waiters.delete(id);
    }
  }

  /** Forgets items sent long ago whose answer nobody took (a dispatch that failed half way). */
  private sweep(): void {
    const now = Date.now();
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [id, w] of this.waiters) if (now - w.sentAt > UNCLAIMED_MS) this.waiters.delete(id);
  }

  private async run(): Promise<void> {
    while (!this.closing) {
      try {
        const reply = (await this.connection.xread('COUNT', READ_COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', this.results, this.lastId)) as
          [string, [string, string[]][]][] | null;
        for (const [, entries] of reply ?? []) {
          for (const [entryId, fields] of entries) {
            this.lastId = entryId;
            const e = entryFields(fields);
            const w = e?.id === undefined ? undefined : this.waiters.get(e.id);
            // An answer nobody waits for (a re-sent item's second answer, a step given up on) is dropped.
            if (!w || !e) continue;
            if (e.ok !== undefined) w.settle({ ok: e.ok });
            else w.settle({ failure: e.failure ?? `an answer to ${e.id} without a result or a failure` });
          }
        }
      } catch (err) {
        if (this.closing) return;
        logThrottled(this.log, `results read failed: ${(err as Error).message}; reading again`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Rejects every wait at once (a stopping coordinator must not hold for a step's timeout). */
  async close(): Promise<void> {
    this.closing = true;
    for (const w of this.waiters.values()) w.reject(new Error('stopped waiting: the coordinator is stopping'));
    this.waiters.clear();
    this.connection.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
