import type IORedis from 'ioredis';
import { abortMessageSchema, parseStored, StoredRecordError } from '@facenet/protocol';
import type { AbortMessage } from '@facenet/protocol';
import { sealMessage, unsealMessage, workKeyFromEnv } from './work-signing';

/** How old a signed abort may be when it arrives: a replayed one from longer ago is refused. */
export const ABORT_MAX_AGE_MS = 10 * 60_000;

/**
 * The coordinator's abort announcements (abandon a job generation's collectives; interrupt a
 * cancelled job's step), signed with the work key like inbox items: anyone who can publish on
 * Redis could otherwise make every rank of a running job fail its step, over and over.
 */
export class AbortChannel {
  constructor(
    private readonly redis: IORedis,
    private readonly channel: string,
    private readonly key: Buffer | undefined = workKeyFromEnv(),
  ) {}

  async publish(m: AbortMessage): Promise<void> {
    await this.redis.publish(this.channel, sealMessage(this.key, this.channel, JSON.stringify({ ...m, at: Date.now() })));
  }
}

/**
 * One message from the channel: the abort, or why it is refused (unsigned, mis-signed, stale
 * beyond ABORT_MAX_AGE_MS, or malformed). Never throws: a throw in a subscriber ends the process.
 */
export function readAbortMessage(
  key: Buffer | undefined,
  channel: string,
  text: string,
  now = Date.now(),
): { message: AbortMessage } | { refused: 'unsigned' | 'bad signature' | 'stale' | 'malformed'; detail: string } {
  const opened = unsealMessage(key, channel, text);
  if ('refused' in opened) return { refused: opened.refused, detail: `abort message ${opened.refused}` };
  let m: AbortMessage & { at?: unknown };
  try {
    m = parseStored(abortMessageSchema, opened.json, 'abort message');
  } catch (err) {
    return { refused: 'malformed', detail: err instanceof StoredRecordError ? err.message : String(err) };
  }
  // Freshness matters only where a signature proves who wrote `at`.
  if (key && !(typeof m.at === 'number' && Math.abs(now - m.at) <= ABORT_MAX_AGE_MS))
    return { refused: 'stale', detail: `abort message for ${m.jobId} generation ${m.generation} is stale (replayed?)` };
  return { message: m };
}
