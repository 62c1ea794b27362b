import { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { SyntheticSource } from '@facenet/core';
import { fetchLfw, LFW_DEFAULT_URL, LFW_PAIRS_DEFAULT_URL } from '../fetch/fetch-lfw';
import { int } from '../parse';
import { Output } from '../output';
import { UsageError } from '../errors';

interface FetchFlags { dest: string; url: string; pairsUrl: string; sha256?: string; pairsSha256?: string; json: boolean }
interface SynthFlags { identities: number; images: number; size: number; seed: number; json: boolean }

async function runFetch(dataset: string, flags: FetchFlags): Promise<void> {
  if (dataset !== 'lfw') throw new UsageError(`unknown dataset '${dataset}' (known: lfw)`);
  const out = new Output(flags.json);
  let last = 0;
  const r = await fetchLfw({
    dest: flags.dest, url: flags.url, pairsUrl: flags.pairsUrl, sha256: flags.sha256, pairsSha256: flags.pairsSha256,
    onProgress: (what, bytes, total) => {
      if (bytes - last < 16 << 20 && bytes !== total) return;
      last = bytes;
      out.info(`[facenet] ${what}: ${(bytes / 1e6).toFixed(1)} MB${total ? ` of ${(total / 1e6).toFixed(1)} MB` : ''}`);
    },
  });
  for (const d of [r.archive, r.pairs]) {
    out.info(d.verified ? `[facenet] sha256 verified: ${d.path}` : `[facenet] sha256 not verified (pass --sha256/--pairs-sha256): ${d.sha256}`);
  }
  out.data({ imagesDir: r.imagesDir, pairsFile: r.pairsFile, identities: r.identities, archiveSha256: r.archive.sha256, pairsSha256: r.pairs.sha256, verified: r.archive.verified && r.pairs.verified });
  out.line(`LFW: ${r.identities} identities in ${r.imagesDir}; pairs in ${r.pairsFile}`);
}

/** Writes the built-in synthetic set as PNG files in people-folder layout. */
async function runSynth(dir: string, flags: SynthFlags): Promise<void> {
  const out = new Output(flags.json);
  const src = new SyntheticSource({ identities: flags.identities, imagesPerIdentity: flags.images, seed: flags.seed });
  let n = 0;
  for (let i = 0; i < src.index.names.length; i++) {
    const folder = join(dir, src.index.names[i] as string);
    mkdirSync(folder, { recursive: true });
    for (const [j, key] of (src.index.images[i] as string[]).entries()) {
      const img = await src.read(key, flags.size);
      await sharp(Buffer.from(img.pixels), { raw: { width: flags.size, height: flags.size, channels: 3 } }).png().toFile(join(folder, `${String(j).padStart(4, '0')}.png`));
      n++;
    }
  }
  out.data({ dir, identities: src.index.names.length, images: n });
  out.line(`wrote ${n} images of ${src.index.names.length} identities to ${dir}`);
}

export function dataCommand(): Command {
  const data = new Command('data').description('datasets: download LFW, write the synthetic set');
  data.command('fetch')
    .description('download a dataset (lfw) with its pairs file, verify sha256 and extract')
    .argument('<dataset>', 'lfw')
    .option('--dest <dir>', 'destination folder', 'data/lfw')
    .option('--url <url>', 'archive URL ($FACENET_LFW_URL)', LFW_DEFAULT_URL)
    .option('--pairs-url <url>', 'pairs.txt URL ($FACENET_LFW_PAIRS_URL)', LFW_PAIRS_DEFAULT_URL)
    .option('--sha256 <hex>', 'expected sha256 of the archive')
    .option('--pairs-sha256 <hex>', 'expected sha256 of pairs.txt')
    .option('--json', 'JSON output', false)
    .action((dataset: string, flags: FetchFlags) => runFetch(dataset, flags));
  data.command('synth')
    .description('write the built-in synthetic face set as PNGs (<dir>/<identity>/<n>.png)')
    .argument('<dir>', 'output folder')
    .option('--identities <n>', 'identities', int, 60)
    .option('--images <n>', 'images per identity', int, 12)
    .option('--size <px>', 'image side', int, 96)
    .option('--seed <n>', 'seed', int, 7)
    .option('--json', 'JSON output', false)
    .action((dir: string, flags: SynthFlags) => runSynth(dir, flags));
  return data;
}
