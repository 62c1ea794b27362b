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
