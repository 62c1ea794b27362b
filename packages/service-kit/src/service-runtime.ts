import IORedis from 'ioredis';
import { ConfigError } from '@facenet/core';

/**
 * Process plumbing shared by the service entry points: numbers from the environment, and
 * SIGINT/SIGTERM wired to one drain (a second signal forces the exit, as Kubernetes expects).
 */
export function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n)) throw new ConfigError(`${name}`, `must be a number, got '${raw}'`);
  return n;
}

export function runService<T>(name: string, service: { start(): Promise<T>; close(): Promise<void> }, onReady?: (value: T) => void): void {
  let signals = 0;
  const shutdown = (signal: string) => {
    if (++signals > 1) process.exit(130);
    console.error(`[${name}] ${signal}: draining (send again to force)`);
    service.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  service.start().then(
    (value) => onReady?.(value),
    (err: Error) => {
      console.error(`[${name}] cannot start: ${err.message}`);
      process.exit(1);
    },
  );
}

/** A Redis URL fit for logs: its password replaced by ***. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * Connects a lazily created ioredis client, and on failure says why in one line (ioredis itself
 * reports only "Connection is closed" when, say, the password is wrong).
 */
export async function connectRedis(client: IORedis, url: string): Promise<void> {
  let last: Error | undefined;
  const onError = (err: Error) => (last = err);
  client.on('error', onError);
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw new Error(`cannot use Redis at ${redactUrl(url)}: ${last?.message ?? (err as Error).message}`);
  } finally {
    client.off('error', onError);
  }
}

/** Runs shutdown steps in order, each in its own try/catch: one failing step never skips the rest. */
export async function runCloseSteps(steps: [string, () => Promise<unknown>][], log: (line: string) => void): Promise<void> {
  for (const [what, fn] of steps) {
    try {
      await fn();
    } catch (err) {
      log(`shutdown: ${what} failed: ${(err as Error).message}`);
    }
  }
}

/** When each distinct error message was last logged in this process (shared by every client and queue). */
const lastLogged = new Map<string, number>();

/**
 * Logs `line` unless the same first line was logged in the last `everyMs` (10 s) anywhere in this
 * process: a failure that repeats every tick of a loop during an outage writes one line, not hundreds.
 */
export function logThrottled(log: (line: string) => void, line: string, everyMs = 10_000): void {
  const first = line.split('\n')[0] as string;
  const now = Date.now();
  if (now - (lastLogged.get(first) ?? -Infinity) < everyMs) return;
  if (lastLogged.size > 1000) lastLogged.clear(); // bounded: messages may carry ids
  lastLogged.set(first, now);
  log(first);
}

/**
 * Logs the errors of an ioredis client, or of a BullMQ Queue, QueueEvents or Worker, at most one
 * line per distinct message every 10 s across the whole process, never a stack: during a Redis
 * outage every client and queue reports every failed reconnect, and BullMQ prints an error event
 * nobody listens to with console.error, stack and all.
 */
export function logRedisErrors(
  client: { on(event: 'error', fn: (err: Error) => void): unknown },
  log: (line: string) => void,
  everyMs = 10_000,
): void {
  client.on('error', (err: Error) => logThrottled(log, `redis: ${String(err?.message ?? err)}`, everyMs));
}

/**
 * Deletes every key under a prefix, the project's own and BullMQ's (tests and benchmarks clean
 * up their random prefixes with it). Returns how many keys went.
 */
export async function deleteKeysUnder(url: string, prefix: string): Promise<number> {
  const redis = new IORedis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on('error', () => undefined);
  let deleted = 0;
  try {
    await redis.connect();
    for (const pattern of [`${prefix}:*`, `${prefix}-bull:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        if (keys.length) deleted += await redis.del(...keys);
      } while (cursor !== '0');
    }
  } finally {
    redis.disconnect();
  }
  return deleted;
}
