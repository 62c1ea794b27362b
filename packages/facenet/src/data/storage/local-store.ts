import { createReadStream } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { DatasetError } from '../../errors';
import { checkRange, ObjectStore } from './object-store';

const missing = (path: string, err: NodeJS.ErrnoException) => new DatasetError(`cannot read ${path}: ${err.code ?? err.message}`);

/** A folder on a filesystem every process mounts. */
export class LocalStore implements ObjectStore {
  readonly base: string;

  constructor(dir: string) {
    // Ends with a separator, as every store's base does: messages name `${base}${name}`.
    this.base = `${resolve(dir)}${sep}`;
  }

  async read(name: string, offset: number, length: number): Promise<Buffer> {
    const path = join(this.base, name);
    checkRange(path, offset, length);
    const f = await openFile(path).catch((err: NodeJS.ErrnoException) => {
      throw missing(path, err);
    });
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await f.read(buf, 0, length, offset);
      if (bytesRead !== length) throw new DatasetError(`${path} ends before byte ${offset + length}`);
      return buf;
    } finally {
      await f.close();
    }
  }

  async open(name: string): Promise<Readable> {
    const path = join(this.base, name);
    const s = createReadStream(path);
    await new Promise<void>((ok, fail) => {
      s.once('open', () => ok());
      s.once('error', (err: NodeJS.ErrnoException) => fail(missing(path, err)));
    });
    return s;
  }
}
