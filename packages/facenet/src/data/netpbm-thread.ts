import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ImageDecodeError } from '../errors';
import { decodeNetpbm, NetpbmImage } from './netpbm';

/**
 * Inputs above this size are read on a thread of their own: ASCII or 16-bit samples take a pass
 * in JavaScript (~15 ms for a 4 MB upload), which on a service's event loop would hold its health
 * checks behind every large PGM an attacker posts. ORL's 10 KB files stay inline.
 */
export const NETPBM_INLINE_BYTES = 64 * 1024;

const THREAD_CODE = (modulePath: string) => `
const { parentPort } = require('node:worker_threads');
const { decodeNetpbm } = require(${JSON.stringify(modulePath)});
parentPort.on('message', ({ id, path, bytes }) => {
  try {
    const img = decodeNetpbm(path, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    const data = new Uint8Array(img.data);
    parentPort.postMessage({ id, ok: true, img: { ...img, data } }, [data.buffer]);
  } catch (err) {
    parentPort.postMessage({ id, ok: false, reason: String(err && err.message).replace('cannot decode ' + path + ': ', '') });
  }
});`;

type Reply = { id: number; ok: true; img: NetpbmImage } | { id: number; ok: false; reason: string };

/** One lazily started thread per process, unreferenced so it never keeps a process alive. */
class NetpbmThread {
  private worker: Worker | undefined;
  private next = 0;
  private readonly waiting = new Map<number, { ok: (img: NetpbmImage) => void; fail: (err: Error) => void; path: string }>();

  decode(path: string, buf: Buffer): Promise<NetpbmImage> {
    const worker = this.start();
    const id = this.next++;
    return new Promise((ok, fail) => {
      this.waiting.set(id, { ok, fail, path });
      if (this.waiting.size === 1) worker.ref();
      worker.postMessage({ id, path, bytes: new Uint8Array(buf) });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(THREAD_CODE(join(__dirname, 'netpbm.js')), { eval: true });
    w.unref();
    w.on('message', (r: Reply) => {
      const waiter = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      if (this.waiting.size === 0) w.unref();
      if (!waiter) return;
      if (r.ok) waiter.ok(r.img);
      else waiter.fail(new ImageDecodeError(waiter.path, r.reason));
    });
    w.on('error', (err) => this.failAll(err));
    w.on('exit', () => this.failAll(new Error('the PGM/PPM thread exited')));
    return (this.worker = w);
  }

  private failAll(err: Error): void {
    this.worker = undefined;
    for (const [, w] of this.waiting) w.fail(new ImageDecodeError(w.path, err.message));
    this.waiting.clear();
  }
}

let thread: NetpbmThread | undefined;
/** Where the thread's module is missing (sources run without a build), large inputs are read inline. */
const threadable = existsSync(join(__dirname, 'netpbm.js'));

/** decodeNetpbm, off the calling thread's event loop when the input is large enough to matter. */
export function decodeNetpbmBounded(path: string, buf: Buffer): Promise<NetpbmImage> {
  if (buf.length <= NETPBM_INLINE_BYTES || !threadable) return Promise.resolve().then(() => decodeNetpbm(path, buf));
  return (thread ??= new NetpbmThread()).decode(path, buf);
}
