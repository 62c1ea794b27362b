import { EventEmitter } from 'node:events';
import IORedis from 'ioredis';

/** What `Job.waitUntilFinished` uses of a BullMQ QueueEvents: listeners, and being ready. */
export class StreamEvents extends EventEmitter {
  constructor() {
    super();
    this.setMaxListeners(0); // one pair of listeners per job in flight on this queue
  }

  async waitUntilReady(): Promise<void> {
    // Nothing to wait for: the reader reads the stream from the id taken before any job was added,
    // so no event after it can be missed, however late the next read is.
  }
}

/** How long one XREAD blocks before it is issued again (and picks up streams added meanwhile). */
const BLOCK_MS = 1000;

/**
 * The events of every worker queue read by one blocking XREAD over all their streams, instead of
 * one BullMQ QueueEvents (a connection and a blocking read) per worker. At 256 ranks those were
 * 256 connections and ~3 XREADs per rank per step, each waking the coordinator for one queue's
 * events: the largest share of its CPU in a profile. Events are emitted as QueueEvents emits them
 * (`completed:<jobId>` with the parsed return value, `failed:<jobId>` with the reason), so BullMQ's
 * own `waitUntilFinished` works on a `StreamEvents`.
 */
export class QueueEventsReader {
  private readonly streams = new Map<string, { lastId: string; events: StreamEvents }>();
  private readonly connection: IORedis;
  private clientId: number | undefined;
  private blocked = false;
  private closing = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly redis: IORedis,
    private readonly log: (line: string) => void,
  ) {
    this.connection = redis.duplicate({ maxRetriesPerRequest: null });
    this.connection.on('error', () => undefined); // reported by the loop's failed reads
    this.connection.on('ready', () => (this.clientId = undefined)); // a new connection has a new id
  }

  /** Starts reading `stream` after `lastId` (taken before any job of it was added). */
  add(stream: string, lastId: string): StreamEvents {
    let s = this.streams.get(stream);
    if (!s) {
      s = { lastId, events: new StreamEvents() };
      this.streams.set(stream, s);
      this.wake();
    }
    this.loop ??= this.run();
    return s.events;
  }

  remove(stream: string): void {
    this.streams.get(stream)?.events.removeAllListeners();
    this.streams.delete(stream);
  }

  /** A read blocked on the old set of streams returns now, so a new stream's events are not held back. */
  private wake(): void {
    if (this.blocked && this.clientId !== undefined) void this.redis.client('UNBLOCK', this.clientId).catch(() => undefined);
  }

  private async run(): Promise<void> {
    while (!this.closing) {
      const keys = [...this.streams.keys()];
      if (keys.length === 0) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      try {
        this.clientId ??= Number(await this.connection.client('ID'));
        this.blocked = true;
        const ids = keys.map((k) => this.streams.get(k)?.lastId ?? '$');
        const data = (await this.connection.xread('BLOCK', BLOCK_MS, 'STREAMS', ...keys, ...ids)) as
          [string, [string, string[]][]][] | null;
        this.blocked = false;
        for (const [stream, entries] of data ?? []) this.dispatch(stream, entries);
      } catch (err) {
        this.blocked = false;
        if (this.closing) return;
        this.log(`queue events: ${(err as Error).message}; reading again`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private dispatch(stream: string, entries: [string, string[]][]): void {
    const s = this.streams.get(stream);
    if (!s) return;
    for (const [id, fields] of entries) {
      s.lastId = id;
      const args: Record<string, unknown> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) args[fields[i] as string] = fields[i + 1];
      if (args.event === 'completed' && typeof args.returnvalue === 'string') {
        try {
          args.returnvalue = JSON.parse(args.returnvalue);
        } catch {
          // left as the text it was: the waiter's own checks reject it
        }
      }
      if (typeof args.jobId === 'string') s.events.emit(`${String(args.event)}:${args.jobId}`, args, id);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const s of this.streams.values()) s.events.removeAllListeners();
    this.streams.clear();
    this.connection.disconnect();
    await this.loop?.catch(() => undefined);
  }
}
