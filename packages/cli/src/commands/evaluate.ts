import { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  AllPairsReport,
  allPairsValFar,
  eigenfaceEmbeddings,
  EmbeddedImages,
  embeddedRows,
  embedImages,
  EmbeddingModel,
  EvaluationResult,
  FilesSource,
  imagesOfPairsPeople,
  fitEigenfaces,
  pairSetFromFile,
  PairSet,
  readPairsFile,
  roc,
  rocPng,
  scorePairs,
  selectBackend,
  writeReportFolder,
} from '@facenet/core';
import { embedderForCommand, ENGINE_FLAG, loadModelForCommand } from '../model-loader';
import { float } from '../parse';
import { Output, pct } from '../output';
import { UsageError } from '../errors';

interface EvaluateFlags {
  pairs: string;
  images: string;
  checkpoint?: string;
  eigenfaces: boolean;
  untrained: boolean;
  folds?: string;
  ext: string;
  roc?: string;
  report?: string;
  int8: boolean;
  farTarget: number;
  cropFraction?: number;
  backend?: string;
  engine?: string;
  json: boolean;
}

/** "8,9" or "8-9" (1-based, as LFW numbers its folds) -> 0-based fold set. */
function parseFolds(spec: string, total: number): Set<number> {
  const out = new Set<number>();
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new UsageError(`--folds: '${part}' is not a fold number or range`);
    const lo = Number(m[1]),
      hi = Number(m[2] ?? m[1]);
    if (lo < 1 || hi > total || lo > hi) throw new UsageError(`--folds: ${part} is outside 1-${total}`);
    for (let f = lo; f <= hi; f++) out.add(f - 1);
  }
  return out;
}

/** Eigenfaces are fit on the images of the pairs outside the evaluated folds: LFW's folds share no people. */
const EIGENFACES_CROP = 0.5;

async function scoreEigenfaces(
  flags: EvaluateFlags,
  out: Output,
  file: ReturnType<typeof readPairsFile>,
  folds: Set<number> | undefined,
  set: PairSet,
  every: EveryImage,
): Promise<Scored> {
  if (!folds) throw new UsageError('--eigenfaces needs --folds: the baseline is fit on the images of the other folds');
  const others = new Set(Array.from({ length: file.folds }, (_, f) => f).filter((f) => !folds.has(f)));
  if (others.size === 0) throw new UsageError('--eigenfaces needs at least one fold outside --folds to fit on');
  await selectBackend({ backend: flags.backend, log: (l) => out.info(l) });
  const cropFraction = flags.cropFraction ?? EIGENFACES_CROP;
  const fitKeys = pairSetFromFile(file, flags.images, flags.ext, others).keys;
  out.info(
    `[facenet] eigenfaces: fitting 128 whitened components on ${fitKeys.length} images of folds ${[...others].map((f) => f + 1).join(',')} (48 px grey, crop fraction ${cropFraction})`,
  );
  const eig = await fitEigenfaces(new FilesSource(fitKeys, cropFraction), fitKeys);
  const keys = unionKeys(set, every);
  const e = await eigenfaceEmbeddings(eig, new FilesSource(keys, cropFraction), keys);
  return {
    ...scoreBoth(e, keys, set, every, flags),
    what: `eigenfaces (whitened PCA, 128 components, fit on ${eig.images} images of folds ${[...others].map((f) => f + 1).join(',')})`,
    cropFraction,
  };
}

async function scoreModel(flags: EvaluateFlags, out: Output, set: PairSet, every: EveryImage): Promise<Scored> {
  if (!flags.checkpoint) throw new UsageError('--checkpoint is required (or --eigenfaces)');
  const loaded = await loadModelForCommand(flags.checkpoint, flags.backend, out, flags.cropFraction);
  let model = loaded.model;
  let what = `${loaded.dir} (step ${loaded.manifest.step})`;
  if (flags.untrained) {
    // The same architecture and preprocessing from a fresh random initialisation: what training added.
    model.dispose();
    model = new EmbeddingModel(loaded.manifest.model);
    what = `untrained ${loaded.manifest.model.architecture} ${loaded.manifest.model.imageSize}px (the architecture of ${loaded.dir})`;
    out.info(`[facenet] ${what}`);
  }
  const keys = unionKeys(set, every);
  const bar = out.progress('embed', keys.length);
  const embedder = await embedderForCommand(model, flags.engine, out);
  const e = await embedImages(embedder, new FilesSource(keys, loaded.cropFraction), keys, { onProgress: (d) => bar.update(d) });
  bar.stop();
  await embedder.dispose();
  return { ...scoreBoth(e, keys, set, every, flags), what, cropFraction: loaded.cropFraction };
}

type EveryImage = { keys: string[]; labels: number[] };
type Scored = { r: EvaluationResult; all: AllPairsReport; what: string; cropFraction: number };

/** The listed pairs' images and every image of their people, each once. */
const unionKeys = (set: PairSet, every: EveryImage) => [...new Set([...set.keys, ...every.keys])];

/** The N-fold score of the listed pairs and VAL at FAR over all pairs, from one embedding of each image. */
function scoreBoth(e: EmbeddedImages, keys: string[], set: PairSet, every: EveryImage, flags: EvaluateFlags) {
  const r = scorePairs(embeddedRows(e, keys, set.keys), set, { farTarget: flags.farTarget, int8: flags.int8 });
  const rows = embeddedRows(e, keys, every.keys);
  return { r, all: allPairsValFar(rows.embeddings, rows.dim, every.labels, rows.ok, { farTargets: [1e-3, 1e-4] }) };
}

async function runEvaluate(flags: EvaluateFlags): Promise<void> {
  const out = new Output(flags.json);
  const file = readPairsFile(flags.pairs);
  const folds = flags.folds ? parseFolds(flags.folds, file.folds) : undefined;
  const set = pairSetFromFile(file, flags.images, flags.ext, folds);
  const keys = set.keys;
  const every = imagesOfPairsPeople(file, flags.images, folds);
  const { r, all, what, cropFraction } = flags.eigenfaces
    ? await scoreEigenfaces(flags, out, file, folds, set, every)
    : await scoreModel(flags, out, set, every);
  if (r.skipped.length)
    out.info(`[facenet] ${r.skipped.length} images could not be read (first: ${r.skipped[0]?.reason}); ${r.droppedPairs} pairs dropped`);
  const e = r.report;
  if (flags.roc) {
    writeFileSync(flags.roc, rocPng(roc(r.distances, r.same)));
    out.info(`[facenet] ROC curve written to ${flags.roc}`);
  }
  if (flags.report) {
    const file = await writeReportFolder(flags.report, {
      title: 'facenet verification report',
      result: r,
      keys,
      facts: [
        ['embedding', what],
        ['pairs file', resolve(flags.pairs)],
        ['folds', flags.folds ?? 'all'],
        ['crop fraction', String(cropFraction)],
        ['embeddings', flags.int8 ? 'int8 (128 bytes)' : 'float32'],
        ['unreadable images', `${r.skipped.length} (${r.droppedPairs} pairs dropped)`],
        ['written', new Date().toISOString()],
      ],
    });
    out.info(`[facenet] report written to ${file}`);
  }
  out.data({
    embedding: what,
    pairsFile: flags.pairs,
    foldsUsed: folds ? [...folds].map((f) => f + 1) : 'all',
    int8: flags.int8,
    droppedPairs: r.droppedPairs,
    skippedImages: r.skipped.length,
    ...e,
    allPairs: all,
  });
  out.line(
    `pairs: ${e.pairs} in ${e.folds} folds${r.droppedPairs ? ` (${r.droppedPairs} dropped: unreadable images)` : ''}${flags.int8 ? ', int8 embeddings' : ''}`,
  );
  out.line(`accuracy: ${pct(e.accuracy)} ± ${pct(e.accuracyStd)} (threshold chosen on the other folds)`);
  out.line(`VAL@FAR=${e.farTarget}: ${pct(e.val)} ± ${pct(e.valStd)} (measured FAR ${e.far.toFixed(5)})`);
  out.line(`AUC: ${e.auc.toFixed(4)}; best threshold on all pairs: ${e.threshold.toFixed(4)}`);
  for (const p of all.points)
    out.line(
      `VAL@FAR=${p.farTarget} over all pairs of the folds' ${all.images} images: ${p.val === null ? 'unresolved (too few impostor pairs)' : pct(p.val)} (${all.genuinePairs} genuine, ${all.impostorPairsScored}${all.impostorPairsScored < all.impostorPairs ? ` sampled of ${all.impostorPairs}` : ''} impostor pairs)`,
    );
}

export function evaluateCommand(): Command {
  return new Command('evaluate')
    .description('LFW-protocol evaluation: N-fold accuracy, VAL@FAR, ROC')
    .requiredOption('--pairs <file>', 'pairs.txt (LFW format)')
    .requiredOption('--images <dir>', 'images folder: <dir>/<name>/<name>_NNNN.jpg')
    .option('--checkpoint <dir>', 'checkpoint or run folder')
    .option('--untrained', "score the checkpoint's architecture from a fresh random initialisation (a baseline)", false)
    .option(
      '--eigenfaces',
      'score the eigenfaces baseline (whitened PCA of 48 px grey crops, fit on the other folds) instead of a model',
      false,
    )
    .option('--folds <list>', 'only these folds, 1-based (e.g. 8,9 or 1-5)')
    .option('--ext <ext>', 'image file extension', '.jpg')
    .option('--roc <file.png>', 'write the ROC curve as a PNG')
    .option('--report <dir>', 'write an HTML report there: numbers, ROC, distance histograms, worst false accepts and rejects')
    .option('--int8', 'score 128-byte int8 embeddings', false)
    .option('--far-target <far>', 'FAR at which VAL is reported', float, 1e-3)
    .option('--crop-fraction <f>', 'centre crop before resizing (default: the crop the model was trained with)', float)
    .option('--backend <name>', 'compute backend')
    .option(...ENGINE_FLAG)
    .option('--json', 'JSON output', false)
    .action((flags: EvaluateFlags) => runEvaluate(flags));
}
