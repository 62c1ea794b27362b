import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What a cache did since it was made; the worker turns these into metrics. */
export interface CacheStats {
  hits: number;
  misses: number;
  bytesFetched: number;
  /** Seconds each fetch took, since the last drainFetchSeconds(). */
  fetchSeconds: number[];
}

const PARTIAL = 'partial-';

/**
 * A byte-bounded cache of fetched bytes on local disk (a worker pod's emptyDir), least recently
 * used out first, so a dataset's second epoch costs no network. An entry is written under a
 * temporary name and renamed: a process killed mid-download leaves a partial file (removed at the
 * next start), never an entry with wrong bytes. An entry that vanished (another process sharing
 * the folder evicted it) is a miss, not an error.
 */
export class DiskCache {
  private readonly entries = new Map<string, number>();
  private bytes = 0;
  /** The folder read back, on first use (a process that never reads through the cache never touches the disk). */
  private ready: Promise<void> | undefined;
  readonly stats: CacheStats = { hits: 0, misses: 0, bytesFetched: 0, fetchSeconds: [] };

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
  ) {}

  /** Entries left by an earlier process, oldest first; partial downloads deleted. */
  private async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const found: { key: string; size: number; at: number }[] = [];
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (name.startsWith(PARTIAL)) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      const s = await stat(path).catch(() => undefined);
      if (s?.isFile()) found.push({ key: name, size: s.size, at: s.mtimeMs });
    }
    for (const e of found.sort((a, b) => a.at - b.at)) this.add(e.key, e.size);
    await this.evict();
  }

  private add(key: string, size: number): void {
    this.bytes += size - (this.entries.get(key) ?? 0);
    this.entries.delete(key);
    this.entries.set(key, size);
  }

  private async evict(): Promise<void> {
    while (this.bytes > this.maxBytes && this.entries.size) {
      const [key, size] = this.entries.entries().next().value as [string, number];
      this.entries.delete(key);
      this.bytes -= size;
      await unlink(join(this.dir, key)).catch(() => undefined);
    }
  }

  /** The cached bytes of `key`, else fetched (and kept). `key`: a file name (hex). */
  async get(key: string, fetch: () => Promise<Buffer>): Promise<Buffer> {
    await (this.ready ??= this.load());
    if (this.entries.has(key)) {
      const hit = await readFile(join(this.dir, key)).catch(() => undefined);
      if (hit) {
        this.stats.hits++;
        this.add(key, hit.length); // most recently used
        return hit;
      }
      this.bytes -= this.entries.get(key) ?? 0;
      this.entries.delete(key);
    }
    this.stats.misses++;
    const t0 = performance.now();
    const buf = await fetch();
    this.stats.fetchSeconds.push((performance.now() - t0) / 1000);
    this.stats.bytesFetched += buf.length;
    if (buf.length <= this.maxBytes) {
      const partial = join(this.dir, `${PARTIAL}${randomBytes(6).toString('hex')}`);
      try {
        await writeFile(partial, buf);
        await rename(partial, join(this.dir, key));
        this.add(key, buf.length);
        await this.evict();
      } catch {
        await unlink(partial).catch(() => undefined); // a full disk costs the cache, not the step
      }
    }
    return buf;
  }

  /** The fetch times recorded since the last call. */
  drainFetchSeconds(): number[] {
    return this.stats.fetchSeconds.splice(0);
  }

  get size(): number {
    return this.bytes;
  }
}

let shared: DiskCache | undefined;

/**
 * This process's cache: FACENET_CACHE_DIR (default a folder of this process under the temp dir)
 * holding at most FACENET_CACHE_MB (default 10240).
 */
export function processCache(env: NodeJS.ProcessEnv = process.env): DiskCache {
  shared ??= new DiskCache(
    env.FACENET_CACHE_DIR || join(tmpdir(), `facenet-cache-${process.pid}`),
    Number(env.FACENET_CACHE_MB || 10240) * 2 ** 20,
  );
  return shared;
}
