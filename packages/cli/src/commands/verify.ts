import { Command } from 'commander';
import { embedImages, FilesSource, listImages, squaredDistance } from '@facenet/core';
import { embedderForCommand, ENGINE_FLAG, loadModelForCommand, thresholdOf } from '../model-loader';
import { float } from '../parse';
import { Output } from '../output';
import { UsageError } from '../errors';

interface VerifyFlags {
  checkpoint: string;
  threshold?: number;
  cropFraction?: number;
  backend?: string;
  engine?: string;
  json: boolean;
}

async function runVerify(a: string, b: string, flags: VerifyFlags): Promise<void> {
  const out = new Output(flags.json);
  const files = [...listImages(a), ...listImages(b)];
  if (files.length !== 2) throw new UsageError('verify takes two image files');
  const { model, manifest, cropFraction } = await loadModelForCommand(flags.checkpoint, flags.backend, out, flags.cropFraction);
  const embedder = await embedderForCommand(model, flags.engine, out);
  const r = await embedImages(embedder, new FilesSource(files, cropFraction), files);
  await embedder.dispose();
  if (r.skipped.length) throw new UsageError(r.skipped.map((s) => s.reason).join('; '));
  const distance = squaredDistance(r.embeddings, 0, r.embeddings, 1, r.dim);
  const { threshold, from } = thresholdOf(manifest, flags.threshold);
  const same = distance <= threshold;
  out.data({ a: files[0], b: files[1], distance, threshold, thresholdFrom: from, same });
  out.line(
    `${same ? 'same' : 'different'}: squared distance ${distance.toFixed(4)} ${same ? '<=' : '>'} threshold ${threshold.toFixed(4)} (${from})`,
  );
}

export function verifyCommand(): Command {
  return new Command('verify')
    .description('are two face images the same person? (squared distance against the threshold)')
    .argument('<a>', 'first image')
    .argument('<b>', 'second image')
    .requiredOption('--checkpoint <dir>', 'checkpoint or run folder')
    .option('--threshold <d>', "squared-distance threshold (default: from the checkpoint's evaluation)", float)
    .option('--crop-fraction <f>', 'centre crop before resizing (default: the crop the model was trained with)', float)
    .option('--backend <name>', 'compute backend')
    .option(...ENGINE_FLAG)
    .option('--json', 'JSON output', false)
    .action((a: string, b: string, flags: VerifyFlags) => runVerify(a, b, flags));
}
