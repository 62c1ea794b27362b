import { Command } from 'commander';
import { embedImages, FilesSource, listImages, nearestNeighbours } from '@facenet/core';
import { embedderForCommand, ENGINE_FLAG, loadModelForCommand, thresholdOf } from '../model-loader';
import { float, positiveInt } from '../parse';
import { Output } from '../output';

interface IdentifyFlags {
  gallery: string;
  checkpoint: string;
  k: number;
  threshold?: number;
  cropFraction?: number;
  backend?: string;
  engine?: string;
  json: boolean;
}

/** k-NN recognition: majority vote of the k nearest gallery faces; "unknown" beyond the threshold. */
async function runIdentify(probe: string, flags: IdentifyFlags): Promise<void> {
  const out = new Output(flags.json);
  const galleryFiles = listImages(flags.gallery);
  const probes = listImages(probe);
  const { model, manifest, cropFraction } = await loadModelForCommand(flags.checkpoint, flags.backend, out, flags.cropFraction);
  const embedder = await embedderForCommand(model, flags.engine, out);
  const gallerySource = new FilesSource(galleryFiles, cropFraction);
  const labelOf = new Map<string, string>();
  gallerySource.index.images.forEach((imgs, i) => imgs.forEach((f) => labelOf.set(f, gallerySource.index.names[i] as string)));
  const bar = out.progress('gallery', galleryFiles.length);
  const g = await embedImages(embedder, gallerySource, galleryFiles, { onProgress: (d) => bar.update(d) });
  bar.stop();
  const p = await embedImages(embedder, new FilesSource(probes, cropFraction), probes);
  await embedder.dispose();
  for (const s of [...g.skipped, ...p.skipped]) out.info(`[facenet] skipped ${s.key}: ${s.reason}`);
  const { threshold } = thresholdOf(manifest, flags.threshold);
  const galleryOk = galleryFiles.flatMap((f, i) => (g.ok[i] ? [i] : []));
  const okEmb = new Float32Array(galleryOk.length * g.dim);
  galleryOk.forEach((i, k) => okEmb.set(g.embeddings.subarray(i * g.dim, (i + 1) * g.dim), k * g.dim));
  const results = probes.flatMap((file, row) => {
    if (!p.ok[row]) return [];
    const nn = nearestNeighbours(okEmb, p.embeddings, row, g.dim, flags.k).map((n) => ({
      path: galleryFiles[galleryOk[n.index] as number] as string,
      label: labelOf.get(galleryFiles[galleryOk[n.index] as number] as string) as string,
      distance: n.distance,
    }));
    const votes = new Map<string, number>();
    for (const n of nn) if (n.distance <= threshold) votes.set(n.label, (votes.get(n.label) ?? 0) + 1);
    const best = [...votes.entries()].sort((a, b) => b[1] - a[1])[0];
    return [{ probe: file, identity: best ? best[0] : 'unknown', votes: best ? best[1] : 0, neighbours: nn }];
  });
  out.data({ threshold, k: flags.k, results });
  for (const r of results) {
    out.line(
      `${r.probe}: ${r.identity}${r.identity !== 'unknown' ? ` (${r.votes}/${flags.k} votes, nearest ${r.neighbours[0]?.distance.toFixed(4)})` : ` (nearest ${r.neighbours[0]?.label} at ${r.neighbours[0]?.distance.toFixed(4)} > ${threshold.toFixed(4)})`}`,
    );
  }
}

export function identifyCommand(): Command {
  return new Command('identify')
    .description('recognise faces by k-nearest neighbours in a labelled gallery (<dir>/<identity>/<image>)')
    .argument('<probe>', 'probe image or folder')
    .requiredOption('--gallery <dir>', 'gallery: one folder per identity')
    .requiredOption('--checkpoint <dir>', 'checkpoint or run folder')
    .option('--k <n>', 'neighbours that vote (>= 1)', positiveInt, 1)
    .option('--threshold <d>', 'beyond this squared distance a face is unknown', float)
    .option('--crop-fraction <f>', 'centre crop before resizing (default: the crop the model was trained with)', float)
    .option('--backend <name>', 'compute backend')
    .option(...ENGINE_FLAG)
    .option('--json', 'JSON output', false)
    .action((probe: string, flags: IdentifyFlags) => runIdentify(probe, flags));
}
