/**
 * Gathers items from concurrent requests into batches, one batch at a time (the model is one
 * compute stream; running two at once only splits the cores). What arrives while a batch runs
 * forms the next one, so batches grow with the load by themselves; an idle batcher runs at the
 * next turn of the event loop (maxDelayMs 0, the default: an idle service adds no wait) or after
 * its first item has waited `maxDelayMs`, whichever comes first with a full batch (`maxBatch`).
 * A request's items may span batches; its promise resolves when all of them are done, in order.
 */
export class MicroBatcher<T, R> {
  private queue: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  /** Cancels the pending timed or next-turn flush, if any. */
  private cancelPending: (() => void) | undefined;
  private running = false;

  constructor(
    private readonly run: (items: T[]) => Promise<R[]>,
    private readonly o: { maxBatch: number; maxDelayMs: number; onBatch?: (size: number) => void },
  ) {}

  submit(items: T[]): Promise<R[]> {
    const done = Promise.all(items.map((item) => new Promise<R>((resolve, reject) => this.queue.push({ item, resolve, reject }))));
    this.schedule();
    return done;
  }

  private schedule(): void {
    if (this.running || this.queue.length === 0) return;
    if (this.queue.length >= this.o.maxBatch) {
      this.cancelPending?.();
      this.cancelPending = undefined;
      void this.flush();
    } else if (!this.cancelPending) {
      const run = () => {
        this.cancelPending = undefined;
        void this.flush();
      };
      if (this.o.maxDelayMs > 0) {
        const t = setTimeout(run, this.o.maxDelayMs);
        this.cancelPending = () => clearTimeout(t);
      } else {
        // The next turn of the event loop: requests that arrived in this one still share the batch.
        const i = setImmediate(run);
        this.cancelPending = () => clearImmediate(i);
      }
    }
  }

  private async flush(): Promise<void> {
    if (this.running || this.queue.length === 0) return;
    this.running = true;
    const batch = this.queue.splice(0, this.o.maxBatch);
    this.o.onBatch?.(batch.length);
    try {
      const results = await this.run(batch.map((b) => b.item));
      batch.forEach((b, i) => b.resolve(results[i] as R));
    } catch (err) {
      for (const b of batch) b.reject(err);
    } finally {
      this.running = false;
      // What queued meanwhile has waited a whole batch already: run it now, as one batch.
      if (this.queue.length > 0) void this.flush();
    }
  }
}
