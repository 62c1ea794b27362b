import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { embedImages, FilesSource, listImages, quantizeEmbeddings } from '@facenet/core';
import { embedderForCommand, ENGINE_FLAG, loadModelForCommand } from '../model-loader';
import { oneOf, float } from '../parse';
import { Output } from '../output';
import { UsageError } from '../errors';

interface EmbedFlags {
  checkpoint: string;
  format: 'json' | 'float32' | 'int8';
  out?: string;
  cropFraction?: number;
  backend?: string;
  engine?: string;
}

/**
 * json: [{ path, embedding }]. float32: rows of raw little-endian floats (dim x 4 bytes).
 * int8: rows of dim bytes (128 bytes a face), value = code * scale; the scale is printed.
 */
async function runEmbed(target: string, flags: EmbedFlags): Promise<void> {
  const out = new Output(flags.format === 'json');
  if (flags.format !== 'json' && !flags.out) throw new UsageError(`--format ${flags.format} writes binary: give --out FILE`);
  const files = listImages(target);
  const { model, cropFraction } = await loadModelForCommand(flags.checkpoint, flags.backend, out, flags.cropFraction);
  const embedder = await embedderForCommand(model, flags.engine, out);
  const bar = out.progress('embed', files.length);
  const r = await embedImages(embedder, new FilesSource(files, cropFraction), files, { onProgress: (d) => bar.update(d) });
  bar.stop();
  for (const s of r.skipped) out.info(`[facenet] skipped ${s.key}: ${s.reason}`);
  const okRows = files.flatMap((f, i) => (r.ok[i] ? [i] : []));
  const rows = new Float32Array(okRows.length * r.dim);
  okRows.forEach((i, k) => rows.set(r.embeddings.subarray(i * r.dim, (i + 1) * r.dim), k * r.dim));
  if (flags.format === 'json') {
    const items = okRows.map((i, k) => ({
      path: files[i],
      embedding: Array.from(rows.subarray(k * r.dim, (k + 1) * r.dim), (v) => Number(v.toFixed(6))),
    }));
    const text = JSON.stringify({ dim: r.dim, embeddings: items, skipped: r.skipped });
    if (flags.out) writeFileSync(flags.out, text);
    else process.stdout.write(`${text}\n`);
  } else if (flags.format === 'float32') {
    writeFileSync(flags.out as string, Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength));
    writeFileSync(`${flags.out as string}.paths.txt`, okRows.map((i) => files[i]).join('\n') + '\n');
  } else {
    const q = quantizeEmbeddings(rows, r.dim);
    writeFileSync(flags.out as string, Buffer.from(q.codes.buffer, q.codes.byteOffset, q.codes.byteLength));
    writeFileSync(`${flags.out as string}.paths.txt`, okRows.map((i) => files[i]).join('\n') + '\n');
    out.info(`[facenet] int8 scale ${q.scale} (value = code x scale), ${r.dim} bytes per face`);
  }
  if (flags.out)
    out.info(`[facenet] wrote ${okRows.length} embeddings to ${flags.out}${r.skipped.length ? `, skipped ${r.skipped.length}` : ''}`);
  await embedder.dispose();
}

export function embedCommand(): Command {
  return new Command('embed')
    .description('embed an image or every image under a folder')
    .argument('<path>', 'image file or folder')
    .requiredOption('--checkpoint <dir>', 'checkpoint or run folder')
    .option('--format <fmt>', 'json, float32 (raw rows) or int8 (128-byte rows)', oneOf(['json', 'float32', 'int8'] as const), 'json')
    .option('--out <file>', 'output file (required for binary formats)')
    .option('--crop-fraction <f>', 'centre crop before resizing (default: the crop the model was trained with)', float)
    .option('--backend <name>', 'compute backend')
    .option(...ENGINE_FLAG)
    .action((path: string, flags: EmbedFlags) => runEmbed(path, flags));
}
