import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { pack as tarPack } from 'tar-stream';
import { DatasetError } from '../errors';
import type { IdentityIndex } from './face-source';
import { MAX_SHARDS, SHARD_INDEX, shardName } from './shards-source';

const BLOCK = 512;
const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

export interface PackShardsResult {
  shards: number;
  identities: number;
  images: number;
  bytes: number;
}

/**
 * Writes the images of `index` (keys: file paths) as tar shards of about `shardBytes`, whole
 * identities each, plus index.jsonl with every member's byte range. Member names are short and
 * ASCII (`<identity#>_<image#>.<ext>`, the identity's name in `<key>.json`), so every tar header
 * is one 512-byte block and offsets follow from sizes alone (a test reads them back).
 */
export async function packShards(index: IdentityIndex, out: string, shardBytes = 256 * 2 ** 20): Promise<PackShardsResult> {
  await mkdir(out, { recursive: true });
  const lines: string[] = [];
  let shard = -1;
  let tar: ReturnType<typeof tarPack> | undefined;
  let written: Promise<void> = Promise.resolve();
  let offset = 0;
  let total = 0;
  let images = 0;
  const close = async () => {
    if (!tar) return;
    tar.finalize();
    await written;
  };
  const open = async () => {
    await close();
    if (++shard >= MAX_SHARDS) throw new DatasetError(`more than ${MAX_SHARDS} shards: raise the shard size`);
    tar = tarPack();
    const file = createWriteStream(join(out, shardName(shard)));
    written = new Promise((ok, fail) => {
      file.on('finish', () => ok());
      file.on('error', fail);
    });
    tar.pipe(file);
    offset = 0;
  };
  for (let i = 0; i < index.names.length; i++) {
    const name = index.names[i] as string;
    const files = index.images[i] as string[];
    const bodies = await Promise.all(files.map((f) => readFile(f)));
    const size = bodies.reduce((n, b) => n + 2 * BLOCK + padded(b.length) + BLOCK, 0);
    if (!tar || (offset > 0 && offset + size > shardBytes)) await open();
    const label = Buffer.from(JSON.stringify({ identity: name }));
    for (const [j, body] of bodies.entries()) {
      const ext =
        extname(files[j] as string)
          .slice(1)
          .toLowerCase() || 'jpg';
      const key = `${String(i).padStart(7, '0')}_${String(j).padStart(4, '0')}`;
      tar?.entry({ name: `${key}.${ext}`, size: body.length }, body);
      lines.push(JSON.stringify({ identity: name, shard, offset: offset + BLOCK, size: body.length, ext }));
      offset += BLOCK + padded(body.length);
      tar?.entry({ name: `${key}.json`, size: label.length }, label);
      offset += BLOCK + padded(label.length);
      images++;
    }
    total += size;
    await new Promise((r) => setImmediate(r)); // let the file stream drain
  }
  await close();
  await writeFile(join(out, SHARD_INDEX), lines.join('\n') + '\n');
  return { shards: shard + 1, identities: index.names.length, images, bytes: total };
}
