import { Command } from 'commander';
import { agglomerativeCluster, embedImages, FilesSource, listImages } from '@facenet/core';
import { embedderForCommand, ENGINE_FLAG, loadModelForCommand, thresholdOf } from '../model-loader';
import { float } from '../parse';
import { Output } from '../output';

interface ClusterFlags {
  checkpoint: string;
  threshold?: number;
  cropFraction?: number;
  backend?: string;
  engine?: string;
  json: boolean;
}

async function runCluster(dir: string, flags: ClusterFlags): Promise<void> {
  const out = new Output(flags.json);
  const files = listImages(dir);
  const { model, manifest, cropFraction } = await loadModelForCommand(flags.checkpoint, flags.backend, out, flags.cropFraction);
  const embedder = await embedderForCommand(model, flags.engine, out);
  const bar = out.progress('embed', files.length);
  const r = await embedImages(embedder, new FilesSource(files, cropFraction), files, { onProgress: (d) => bar.update(d) });
  bar.stop();
  await embedder.dispose();
  for (const s of r.skipped) out.info(`[facenet] skipped ${s.key}: ${s.reason}`);
  const ok = files.flatMap((f, i) => (r.ok[i] ? [i] : []));
  const emb = new Float32Array(ok.length * r.dim);
  ok.forEach((i, k) => emb.set(r.embeddings.subarray(i * r.dim, (i + 1) * r.dim), k * r.dim));
  const { threshold, from } = thresholdOf(manifest, flags.threshold);
  const ids = agglomerativeCluster(emb, r.dim, threshold);
  const groups: string[][] = [];
  ids.forEach((c, k) => (groups[c] ??= []).push(files[ok[k] as number] as string));
  out.data({ threshold, thresholdFrom: from, clusters: groups, skipped: r.skipped });
  out.line(`${groups.length} clusters of ${ok.length} faces (average linkage, threshold ${threshold.toFixed(4)}, ${from})`);
  groups.forEach((g, i) => out.line(`cluster ${i} (${g.length}): ${g.join(' ')}`));
}

export function clusterCommand(): Command {
  return new Command('cluster')
    .description('group the faces under a folder by agglomerative clustering of their embeddings')
    .argument('<dir>', 'folder of images')
    .requiredOption('--checkpoint <dir>', 'checkpoint or run folder')
    .option('--threshold <d>', 'merge clusters whose mean squared distance is below this', float)
    .option('--crop-fraction <f>', 'centre crop before resizing (default: the crop the model was trained with)', float)
    .option('--backend <name>', 'compute backend')
    .option(...ENGINE_FLAG)
    .option('--json', 'JSON output', false)
    .action((dir: string, flags: ClusterFlags) => runCluster(dir, flags));
}
