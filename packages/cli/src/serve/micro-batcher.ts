/**
 * Gathers items from concurrent requests into batches: a batch runs when it holds `maxBatch`
 * items or when its first item has waited `maxDelayMs`, one batch at a time (the model is one
 * compute stream; running two at once only splits the cores). A request's items may span
 * batches; its promise resolves when all of them are done, in order.
 */
export class MicroBatcher<T, R> {
  private queue: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;
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
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        void this.flush();
      }, this.o.maxDelayMs);
    }
  }

  private async flush(): Promise<void> {
    if (this.running) return;
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
