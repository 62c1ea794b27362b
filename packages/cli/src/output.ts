import { SingleBar, Presets } from 'cli-progress';

/**
 * Where results go: `--json` prints machine-readable JSON on stdout (one object, or one per
 * line for streams of events); otherwise human text. Progress and logs go to stderr only.
 */
export class Output {
  constructor(readonly json: boolean) {}

  /** Human line on stdout (suppressed in JSON mode). */
  line(text = ''): void {
    if (!this.json) process.stdout.write(`${text}\n`);
  }

  /** A JSON value on stdout (JSON mode only). */
  data(value: unknown): void {
    if (this.json) process.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** Diagnostics on stderr, in both modes. */
  info(text: string): void {
    process.stderr.write(`${text}\n`);
  }

  /** A progress bar on stderr when it is a terminal; a no-op otherwise (logs stay clean). */
  progress(label: string, total: number): { update(done: number, payload?: Record<string, string>): void; stop(): void } {
    if (!process.stderr.isTTY) return { update() {}, stop() {} };
    const bar = new SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} {eta_formatted} {info}`,
        stream: process.stderr,
        hideCursor: true,
        clearOnComplete: true,
      },
      Presets.shades_classic,
    );
    bar.start(total, 0, { info: '' });
    return { update: (done, payload) => bar.update(done, payload ?? {}), stop: () => bar.stop() };
  }
}

export const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
