/**
 * Waits for a callback with two ways out: `signal` aborting (rejects with its reason) and a
 * timeout (rejects with `timeoutMessage()`, read when it fires). `arm` installs the callbacks
 * and returns how to remove them; they are removed however the wait ends.
 */
export function abortableWait<T>(
  signal: AbortSignal,
  timeoutMs: number,
  timeoutMessage: () => string,
  arm: (done: (value: T) => void, fail: (err: Error) => void) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let disarm = () => {};
    const onAbort = () => settle(() => reject(signal.reason as Error));
    const timer = setTimeout(() => settle(() => reject(new Error(timeoutMessage()))), timeoutMs);
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      disarm();
      fn();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    disarm = arm(
      (v) => settle(() => resolve(v)),
      (e) => settle(() => reject(e)),
    );
    if (signal.aborted) onAbort();
  });
}
