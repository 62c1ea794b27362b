import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '@facenet/core';

/**
 * The key the coordinator signs work items with and the workers check them against:
 * FACENET_WORK_KEY (32+ characters), or the file FACENET_WORK_KEY_FILE names (a Kubernetes Secret
 * mounted as a file). Anyone who can write to Redis can put an item in a worker's inbox; only who
 * holds this key can put one the worker will run. Undefined: work is unsigned (and unchecked).
 */
export function workKeyFromEnv(env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  let key = env.FACENET_WORK_KEY;
  if (!key && env.FACENET_WORK_KEY_FILE) {
    try {
      key = readFileSync(env.FACENET_WORK_KEY_FILE, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(
        'FACENET_WORK_KEY_FILE',
        `cannot read ${env.FACENET_WORK_KEY_FILE}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  if (!key) return undefined;
  if (key.length < 32)
    throw new ConfigError(
      env.FACENET_WORK_KEY ? 'FACENET_WORK_KEY' : 'FACENET_WORK_KEY_FILE',
      'the work key must be at least 32 characters',
    );
  return Buffer.from(key, 'utf8');
}

/** HMAC-SHA256 of the item's id and its data as sent (the exact JSON text), hex. */
export function signItem(key: Buffer, id: string, data: string): string {
  return createHmac('sha256', key).update(id).update('\n').update(data).digest('hex');
}

/** Why an item is refused under `key`, or undefined when its signature is the key's. */
export function signatureProblem(key: Buffer, id: string, data: string, sig: string | undefined): 'unsigned' | 'bad signature' | undefined {
  if (!sig) return 'unsigned';
  const want = Buffer.from(signItem(key, id, data), 'hex');
  const got = Buffer.from(sig, 'hex');
  return got.length === want.length && timingSafeEqual(got, want) ? undefined : 'bad signature';
}

/**
 * A pub/sub message under `key`: the JSON inside an envelope with its signature over `topic` and
 * the text (a subscriber cannot check a message it did not see whole). Unkeyed: the JSON as is.
 */
export function sealMessage(key: Buffer | undefined, topic: string, json: string): string {
  return key ? JSON.stringify({ signed: json, sig: signItem(key, topic, json) }) : json;
}

/**
 * The JSON a sealed message carries, or why it is refused under `key`. A keyless reader accepts
 * both forms (a hand-added worker keeps working); a keyed one only a message signed with its key.
 */
export function unsealMessage(
  key: Buffer | undefined,
  topic: string,
  text: string,
): { json: string } | { refused: 'unsigned' | 'bad signature' } {
  const sealed = envelopeOf(text);
  if (!key) return { json: sealed ? sealed.signed : text };
  if (!sealed) return { refused: 'unsigned' };
  const problem = signatureProblem(key, topic, sealed.signed, sealed.sig);
  return problem ? { refused: problem } : { json: sealed.signed };
}

function envelopeOf(text: string): { signed: string; sig?: string } | undefined {
  let v: { signed?: unknown; sig?: unknown } | null;
  try {
    v = JSON.parse(text) as typeof v;
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object' || typeof v.signed !== 'string') return undefined;
  return { signed: v.signed, sig: typeof v.sig === 'string' ? v.sig : undefined };
}
