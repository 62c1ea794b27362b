import IORedis from 'ioredis';
import { signatureProblem } from './work-signing';
import { encodeFailure } from '@facenet/core';
import { logThrottled } from './service-runtime';

/**
 * Work for one worker, on Redis streams: the coordinator XADDs each item (a shard job, a state
 * query) to the worker's inbox stream; the worker reads it through a consumer group, runs items one
 * at a time in order, and answers on the cluster's one results stream (read by the coordinator
 * with a single blocking XREAD; see work-dispatch.ts). A step costs a rank about four Redis
 * commands this way; a BullMQ job per rank per step cost ~60 (its Lua scripts' commands, event
 * stream entries, lock renewal).
 *
 * Delivery is at most once per worker process, as BullMQ's was with `maxStalledCount: 0`: an item
 * is never re-run. An item the worker took and never answered (the process died running it) is
 * answered as failed by the next process of the same worker id, which finds it in the group's
 * pending list. An item sent again under an id already answered (a coordinator that restarted
 * mid-step re-sends its step) gets the same answer again, not a second run.
 */

/** The consumer group every inbox is read through (its pending list is what a dead process left). */
export const INBOX_GROUP = 'worker';
/** An inbox holds a step in flight and the odd state query; answered entries are trimmed away
 * (exactly: an approximate trim keeps whole 100-entry nodes, ~150 KB a worker). */
export const INBOX_MAX_LENGTH = 32;
/** The results stream is read as it grows by one coordinator; this keeps a few steps of a large world. */
export const RESULTS_MAX_LENGTH = 10_000;
/** Answers remembered by id, for items sent again. */
const ANSWERS_KEPT = 64;
/** How long a blocking read waits before it is issued again (and sees that the inbox is closing). */
const BLOCK_MS = 1000;

export interface InboxItem {
  /** The sender's id for the item: the same id sent twice means the same work. */
  id: string;
  data: unknown;
}

/** One answer on the results stream: the item's return value (JSON), or its failure envelope. */
export type InboxAnswer = { ok: string } | { failure: string };

/** The fields of an inbox entry or a results entry, as Redis returns them: [k, v, k, v, ...]. */
export function entryFields(fields: string[] | null): Record<string, string> | undefined {
  if (!fields) return undefined; // trimmed while still pending
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i] as string] = fields[i + 1] as string;
  return out;
}

/** An XREAD(GROUP) reply as ioredis's typed stream commands shape it (its raw `call` gives RESP3 maps). */
type StreamReply = [string, [string, string[] | null][]][] | null;

/** A worker's end: takes its items one at a time and answers each on the results stream. */
export class WorkInbox {
  private readonly connection: IORedis;
  private readonly answers = new Map<string, InboxAnswer>();
  private loop: Promise<void> | undefined;
  private current: Promise<void> | undefined;
  private closing = false;

  constructor(
    private readonly redis: IORedis,
    private readonly keys: { inbox: string; results: string },
    /** This worker's id: the consumer's name, so a restarted process finds what the last one left. */
    private readonly consumer: string,
    private readonly handle: (item: InboxItem) => Promise<unknown>,
    private readonly log: (line: string) => void,
    /** With a key, only items signed with it run; others are answered as refused and reported to `onRefused`. */
    private readonly signing: { key: Buffer; onRefused?: (reason: string) => void } | undefined = undefined,
  ) {
    // Blocking reads get their own connection, so heartbeats and answers never wait behind one.
    this.connection = redis.duplicate({ maxRetriesPerRequest: null });
    this.connection.on('error', () => undefined); // reported by the loop's failed reads
  }

  async start(): Promise<void> {
    await this.ensureGroup();
    await this.answerOrphans();
    this.loop = this.run();
  }

  /**
   * Creates the group from the stream's start: entries the coordinator added before this worker
   * first read (or after it removed the inbox of a worker it took for lost) are all read.
   */
  private async ensureGroup(): Promise<void> {
    try {
      await this.redis.call('XGROUP', 'CREATE', this.keys.inbox, INBOX_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!/BUSYGROUP/.test((err as Error).message)) throw err;
    }
  }

  /** Items a previous process of this worker took and never answered: it died running them. */
  private async answerOrphans(): Promise<void> {
    const reply = (await this.redis.xreadgroup('GROUP', INBOX_GROUP, this.consumer, 'STREAMS', this.keys.inbox, '0')) as StreamReply;
    for (const [, entries] of reply ?? []) {
      for (const [entryId, fields] of entries) {
        const id = entryFields(fields)?.id;
        if (id === undefined) await this.redis.xack(this.keys.inbox, INBOX_GROUP, entryId);
        else await this.answer(entryId, id, { failure: encodeFailure(new Error(`the worker restarted while running ${id}`)) });
      }
    }
  }

  private async run(): Promise<void> {
    while (!this.closing) {
      let reply: StreamReply;
      try {
        reply = (await this.connection.xreadgroup(
          'GROUP',
          INBOX_GROUP,
          this.consumer,
          'COUNT',
          1,
          'BLOCK',
          BLOCK_MS,
          'STREAMS',
          this.keys.inbox,
          '>',
        )) as StreamReply;
      } catch (err) {
        if (this.closing) return;
        const message = (err as Error).message;
        // The coordinator removed this inbox (it took the worker for lost): make it anew and go on.
        if (/NOGROUP/.test(message)) await this.ensureGroup().catch(() => undefined);
        else {
          logThrottled(this.log, `inbox read failed: ${message}; reading again`);
          await new Promise((r) => setTimeout(r, 200));
        }
        continue;
      }
      for (const [, entries] of reply ?? []) {
        for (const [entryId, fields] of entries) {
          this.current = this.take(entryId, fields);
          await this.current;
          this.current = undefined;
        }
      }
    }
  }

  private async take(entryId: string, fields: string[] | null): Promise<void> {
    const entry = entryFields(fields);
    if (!entry?.id || entry.data === undefined) {
      this.log(`inbox entry ${entryId} is not an item (fields ${Object.keys(entry ?? {}).join(', ') || 'none'}); dropped`);
      await this.redis.xack(this.keys.inbox, INBOX_GROUP, entryId).catch(() => undefined);
      return;
    }
    let answer = this.answers.get(entry.id);
    if (!answer) {
      if (this.closing) answer = { failure: encodeFailure(new Error(`the worker is stopping; ${entry.id} was not run`)) };
      else {
        try {
          this.checkSignature(entry.id, entry.data, entry.sig);
          answer = { ok: JSON.stringify((await this.handle({ id: entry.id, data: JSON.parse(entry.data) as unknown })) ?? null) };
        } catch (err) {
          answer = { failure: encodeFailure(err) };
        }
      }
      this.answers.set(entry.id, answer);
      if (this.answers.size > ANSWERS_KEPT) this.answers.delete(this.answers.keys().next().value as string);
    }
    await this.answer(entryId, entry.id, answer).catch((err: Error) => this.log(`answering ${entry.id} failed: ${err.message}`));
  }

  /** Throws a RejectedJobError for an item this worker's key did not sign (nothing of it runs). */
  private checkSignature(id: string, data: string, sig: string | undefined): void {
    if (!this.signing) return;
    const problem = signatureProblem(this.signing.key, id, data, sig);
    if (!problem) return;
    this.signing.onRefused?.(problem);
    this.log(`refused ${id}: ${problem} (work items must be signed with this worker's FACENET_WORK_KEY)`);
    const err = new Error(
      `refused ${id}: ${problem}; this worker runs only work signed with its FACENET_WORK_KEY (the coordinator has none, or another)`,
    );
    err.name = 'RejectedJobError';
    throw err;
  }

  /** Publishes the answer and acknowledges the entry: one round trip, two commands. */
  private async answer(entryId: string, id: string, answer: InboxAnswer): Promise<void> {
    const [field, value] = 'ok' in answer ? ['ok', answer.ok] : ['failure', answer.failure];
    const replies = await this.redis
      .pipeline()
      .xadd(this.keys.results, 'MAXLEN', '~', RESULTS_MAX_LENGTH, '*', 'id', id, 'from', this.consumer, field, value)
      .xack(this.keys.inbox, INBOX_GROUP, entryId)
      .exec();
    const failed = replies?.find(([err]) => err)?.[0];
    if (failed) throw failed;
  }

  /**
   * Stops taking items; the item running is given `graceMs` to finish and answer (an item read
   * meanwhile is answered as not run), then the blocking connection closes.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    if (this.current) await Promise.race([this.current, new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.connection.disconnect();
    await Promise.race([this.loop?.catch(() => undefined), new Promise((r) => setTimeout(r, 100).unref())]);
  }
}

/** How many items wait in an inbox and how many its worker has taken and not answered. */
export async function inboxDepth(redis: IORedis, inbox: string): Promise<{ waiting: number; active: number }> {
  try {
    const groups = (await redis.xinfo('GROUPS', inbox)) as (string | number | null)[][];
    for (const g of groups) {
      const info = entryFields(g.map(String));
      if (info?.name === INBOX_GROUP) return { waiting: Number(info.lag) || 0, active: Number(info.pending) || 0 };
    }
  } catch {
    // no inbox yet
  }
  return { waiting: 0, active: 0 };
}
