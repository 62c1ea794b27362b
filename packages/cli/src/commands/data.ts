import { Command } from 'commander';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import {
  ManifestSource,
  MAX_MANIFEST_IMAGES,
  packManifest,
  packShards,
  scanPeopleFolderAsync,
  SyntheticSource,
  unpackIndex,
} from '@facenet/core';
import { fetchLfw, LFW_DEFAULT_URL, LFW_PAIRS_DEFAULT_URL } from '../fetch/fetch-lfw';
import { int, oneOf } from '../parse';
import { Output } from '../output';
import { UsageError } from '../errors';

interface FetchFlags {
  dest: string;
  url: string;
  pairsUrl: string;
  sha256?: string;
  pairsSha256?: string;
  json: boolean;
}
interface SynthFlags {
  identities: number;
  images: number;
  size: number;
  seed: number;
  layout: 'png' | 'orl';
  json: boolean;
}

async function runFetch(dataset: string, flags: FetchFlags): Promise<void> {
  if (dataset !== 'lfw') throw new UsageError(`unknown dataset '${dataset}' (known: lfw)`);
  const out = new Output(flags.json);
  let last = 0;
  const r = await fetchLfw({
    dest: flags.dest,
    url: flags.url,
    pairsUrl: flags.pairsUrl,
    sha256: flags.sha256,
    pairsSha256: flags.pairsSha256,
    onProgress: (what, bytes, total) => {
      if (bytes - last < 16 << 20 && bytes !== total) return;
      last = bytes;
      out.info(`[facenet] ${what}: ${(bytes / 1e6).toFixed(1)} MB${total ? ` of ${(total / 1e6).toFixed(1)} MB` : ''}`);
    },
  });
  for (const d of [r.archive, r.pairs]) {
    out.info(
      d.verified ? `[facenet] sha256 verified: ${d.path}` : `[facenet] sha256 not verified (pass --sha256/--pairs-sha256): ${d.sha256}`,
    );
  }
  out.data({
    imagesDir: r.imagesDir,
    pairsFile: r.pairsFile,
    identities: r.identities,
    archiveSha256: r.archive.sha256,
    pairsSha256: r.pairs.sha256,
    verified: r.archive.verified && r.pairs.verified,
  });
  out.line(`LFW: ${r.identities} identities in ${r.imagesDir}; pairs in ${r.pairsFile}`);
}

/** ORL's shape: 92 x 112 greyscale. */
const ORL_WIDTH = 92;
const ORL_HEIGHT = 112;

/**
 * One synthetic face in ORL's file format (binary PGM, P5): rendered square at ORL's height,
 * centre columns kept, RGB averaged to grey.
 */
async function orlPgm(src: SyntheticSource, key: string): Promise<Buffer> {
  const img = await src.read(key, ORL_HEIGHT);
  const left = (ORL_HEIGHT - ORL_WIDTH) >> 1;
  const grey = Buffer.alloc(ORL_WIDTH * ORL_HEIGHT);
  for (let y = 0; y < ORL_HEIGHT; y++) {
    for (let x = 0; x < ORL_WIDTH; x++) {
      const o = (y * ORL_HEIGHT + x + left) * 3;
      grey[y * ORL_WIDTH + x] = Math.round(((img.pixels[o] as number) + (img.pixels[o + 1] as number) + (img.pixels[o + 2] as number)) / 3);
    }
  }
  return Buffer.concat([Buffer.from(`P5\n${ORL_WIDTH} ${ORL_HEIGHT}\n255\n`), grey]);
}

/**
 * Writes the built-in synthetic set in people-folder layout: PNGs (<dir>/<identity>/NNNN.png),
 * or ORL's own layout and format (<dir>/sN/M.pgm, 92 x 112 grey), which stands in for ORL where
 * the real set is absent (the tests build it so on a clone without ../shared/data).
 */
async function runSynth(dir: string, flags: SynthFlags): Promise<void> {
  const out = new Output(flags.json);
  const src = new SyntheticSource({ identities: flags.identities, imagesPerIdentity: flags.images, seed: flags.seed });
  let n = 0;
  for (let i = 0; i < src.index.names.length; i++) {
    const folder = join(dir, flags.layout === 'orl' ? `s${i + 1}` : (src.index.names[i] as string));
    mkdirSync(folder, { recursive: true });
    for (const [j, key] of (src.index.images[i] as string[]).entries()) {
      if (flags.layout === 'orl') {
        writeFileSync(join(folder, `${j + 1}.pgm`), await orlPgm(src, key));
      } else {
        const img = await src.read(key, flags.size);
        await sharp(Buffer.from(img.pixels), { raw: { width: flags.size, height: flags.size, channels: 3 } })
          .png()
          .toFile(join(folder, `${String(j).padStart(4, '0')}.png`));
      }
      n++;
    }
  }
  out.data({ dir, identities: src.index.names.length, images: n, layout: flags.layout });
  out.line(`wrote ${n} images of ${src.index.names.length} identities to ${dir}`);
}

interface ManifestFlags {
  out?: string;
  json: boolean;
}

/** One CSV field, quoted when it holds a comma, quote or line break (RFC 4180). */
const csvField = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/**
 * Writes a manifest (CSV: path,identity) of a people folder, paths relative to the manifest's
 * folder: a job then admits the set by reading one file instead of walking the tree.
 */
async function runManifest(dir: string, flags: ManifestFlags): Promise<void> {
  const out = new Output(flags.json);
  const file = resolve(flags.out ?? join(dir, 'manifest.csv'));
  const base = dirname(file);
  const rel = relative(base, resolve(dir));
  if (rel.startsWith('..') || isAbsolute(rel))
    throw new UsageError(`the manifest must be written in ${dir} or a folder above it (its paths are relative to its own folder)`);
  const index = await scanPeopleFolderAsync(dir, { maxImages: MAX_MANIFEST_IMAGES, deadlineMs: 3_600_000 });
  const stream = createWriteStream(file);
  const write = (line: string) => (stream.write(line) ? Promise.resolve() : once(stream, 'drain').then(() => undefined));
  await write('path,identity\n');
  let n = 0;
  for (let i = 0; i < index.names.length; i++) {
    const name = csvField(index.names[i] as string);
    for (const f of index.images[i] as string[]) {
      await write(`${csvField(relative(base, resolve(f)).split(sep).join('/'))},${name}\n`);
      n++;
    }
  }
  await new Promise<void>((ok, fail) => stream.end((err?: Error | null) => (err ? fail(err) : ok())));
  out.data({ manifest: file, identities: index.names.length, images: n });
  out.line(`wrote ${file}: ${n} images of ${index.names.length} identities`);
}

interface PackFlags {
  shardMb: number;
  json: boolean;
}

/** Writes a people folder or a manifest's images as tar shards with index.jsonl (a `kind: shards` dataset). */
async function runPack(src: string, dest: string, flags: PackFlags): Promise<void> {
  const out = new Output(flags.json);
  const isManifest = /\.(csv|jsonl|ndjson)$/i.test(src);
  const index = isManifest
    ? unpackIndex(await packManifest(src, { deadlineMs: 3_600_000 }), ManifestSource.keyPrefix(src))
    : await scanPeopleFolderAsync(src, { maxImages: MAX_MANIFEST_IMAGES, deadlineMs: 3_600_000 });
  const r = await packShards(index, dest, flags.shardMb * 2 ** 20);
  out.data({ dest, ...r });
  out.line(
    `wrote ${r.shards} shard(s) of ${r.images} images, ${r.identities} identities (${(r.bytes / 1e6).toFixed(1)} MB) and index.jsonl to ${dest}`,
  );
}

export function dataCommand(): Command {
  const data = new Command('data').description('datasets: download LFW, write the synthetic set, write a manifest, pack shards');
  data
    .command('pack')
    .description(
      'write a people folder or a manifest as tar shards (whole identities each) with index.jsonl, for a `kind: shards` dataset served from a folder, HTTP or S3',
    )
    .argument('<src>', 'people folder, or manifest (.csv, .jsonl)')
    .argument('<dest>', 'output folder')
    .option('--shard-mb <n>', 'shard size in MB (a shard may exceed it by one identity)', int, 256)
    .option('--json', 'JSON output', false)
    .action((src: string, dest: string, flags: PackFlags) => runPack(src, dest, flags));
  data
    .command('manifest')
    .description('write a manifest (CSV: path,identity) of a people folder <dir>/<identity>/<image>, for a `kind: manifest` dataset')
    .argument('<dir>', 'people folder')
    .option('--out <file>', 'manifest file, in <dir> or a folder above it (default <dir>/manifest.csv)')
    .option('--json', 'JSON output', false)
    .action((dir: string, flags: ManifestFlags) => runManifest(dir, flags));
  data
    .command('fetch')
    .description('download a dataset (lfw) with its pairs file, verify sha256 and extract')
    .argument('<dataset>', 'lfw')
    .option('--dest <dir>', 'destination folder', 'data/lfw')
    .option('--url <url>', 'archive URL ($FACENET_LFW_URL)', LFW_DEFAULT_URL)
    .option('--pairs-url <url>', 'pairs.txt URL ($FACENET_LFW_PAIRS_URL)', LFW_PAIRS_DEFAULT_URL)
    .option('--sha256 <hex>', 'expected sha256 of the archive')
    .option('--pairs-sha256 <hex>', 'expected sha256 of pairs.txt')
    .option('--json', 'JSON output', false)
    .action((dataset: string, flags: FetchFlags) => runFetch(dataset, flags));
  data
    .command('synth')
    .description(
      "write the built-in synthetic face set as PNGs (<dir>/<identity>/<n>.png), or in ORL's layout (--layout orl: <dir>/sN/M.pgm, 92x112 grey)",
    )
    .argument('<dir>', 'output folder')
    .option('--identities <n>', 'identities', int, 60)
    .option('--images <n>', 'images per identity', int, 12)
    .option('--size <px>', 'image side', int, 96)
    .option('--seed <n>', 'seed', int, 7)
    .option(
      '--layout <layout>',
      "png (people folders of PNGs, --size px) or orl (sN/M.pgm, 92x112 grey; use --identities 40 --images 10 for ORL's size)",
      oneOf(['png', 'orl'] as const),
      'png',
    )
    .option('--json', 'JSON output', false)
    .action((dir: string, flags: SynthFlags) => runSynth(dir, flags));
  return data;
}
