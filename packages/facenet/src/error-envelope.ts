/**
 * One shape for an error crossing a boundary (a compute or mining thread's reply, a BullMQ job's
 * failure): its class name, message, typed fields and whether retrying can help. The receiving
 * side rebuilds the same class when it knows it, so `instanceof` keeps working across threads
 * and processes, and the coordinator tells a storage error from a ring error from a bad job.
 */
export interface ErrorEnvelope {
  name: string;
  message: string;
  /** True when the same operation, tried again, may succeed (a ring fault); false for bad input or a full disk. */
  retryable: boolean;
  /** The error's own string, number and boolean properties (path, step, rank, code, ...). */
  fields: Record<string, string | number | boolean>;
}

type ErrorClass = abstract new (...args: never[]) => Error;
const known = new Map<string, ErrorClass>();

/** Makes these classes rebuildable by name on the receiving side (each package registers its own). */
export function registerErrorClasses(...classes: ErrorClass[]): void {
  for (const c of classes) known.set(c.name, c);
}

/** Whether retrying may help: an error's own `retryable`, else false (unknown errors are not retried blindly). */
export function isRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { retryable?: unknown }).retryable === true;
}

export function toEnvelope(err: unknown): ErrorEnvelope {
  const e = err instanceof Error ? err : new Error(String(err));
  const fields: ErrorEnvelope['fields'] = {};
  for (const [k, v] of Object.entries(e)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') fields[k] = v;
  }
  delete fields.retryable;
  return { name: e.name, message: e.message, retryable: isRetryable(e), fields };
}

/**
 * The error an envelope stands for: an instance of the registered class of that name (fields
 * restored, its constructor not re-run, so the message stays the sender's), else a plain Error
 * carrying the name and fields.
 */
export function fromEnvelope(env: ErrorEnvelope): Error {
  const cls = known.get(env.name);
  const e = (cls ? Object.create(cls.prototype as object) : new Error(env.message)) as Error & Record<string, unknown>;
  Object.assign(e, env.fields);
  Object.defineProperty(e, 'message', { value: env.message, writable: true, configurable: true });
  Object.defineProperty(e, 'name', { value: env.name, writable: true, configurable: true });
  Object.defineProperty(e, 'retryable', { value: env.retryable, writable: true, configurable: true, enumerable: false });
  return e;
}

/** BullMQ keeps only a failed job's message: the envelope travels inside it, behind this marker. */
const MARK = 'facenet-error:';

export function encodeFailure(err: unknown): string {
  return `${MARK}${JSON.stringify(toEnvelope(err))}`;
}

/** The error a BullMQ failure reason stands for (a plain Error when it carries no envelope). */
export function decodeFailure(reason: string): Error {
  const i = reason.indexOf(MARK);
  if (i >= 0) {
    try {
      return fromEnvelope(JSON.parse(reason.slice(i + MARK.length)) as ErrorEnvelope);
    } catch {
      // not ours after all: fall through
    }
  }
  return new Error(reason);
}
