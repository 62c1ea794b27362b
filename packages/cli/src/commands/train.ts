import { Command } from 'commander';
import { join } from 'node:path';
import {
  compileTrainOptions,
  FaceSource,
  FolderSource,
  holdoutPairs,
  SELECTION_STRATEGIES,
  OPTIMIZERS,
  ARCHITECTURES,
  parseTrainSpec,
  resolveCheckpointDir,
  selectBackend,
  splitHoldout,
  StepReport,
  SubsetSource,
  SyntheticSource,
  Trainer,
  TrainOptions,
  EvaluationResult,
  ArchitectureName,
  SelectionStrategy,
  OptimizerName,
  ScheduleKind,
} from '@facenet/core';
import { float, int, oneOf, readSpecFile } from '../parse';
import { Output, pct } from '../output';

interface TrainFlags {
  data?: string;
  config?: string;
  model?: ArchitectureName;
  imageSize?: number;
  width?: number;
  steps?: number;
  P?: number;
  K?: number;
  selection?: SelectionStrategy;
  margin?: number;
  optimizer?: OptimizerName;
  lr?: number;
  schedule?: ScheduleKind;
  warmup?: number;
  virtualShards?: number;
  seed?: number;
  holdout?: number;
  cropFraction?: number;
  checkpointDir?: string;
  checkpointEvery?: number;
  evalEvery?: number;
  resume?: string;
  backend?: string;
  json: boolean;
  logEvery?: number;
  syntheticIdentities: number;
  syntheticImages: number;
}

/** Flags override the config file, which overrides the defaults. */
function mergeOptions(flags: TrainFlags): TrainOptions {
  const spec = flags.config ? parseTrainSpec(readSpecFile(flags.config)) : {};
  const pick = <T>(v: T | undefined, fallback: T | undefined) => (v !== undefined ? v : fallback);
  return {
    ...spec,
    model: {
      ...spec.model,
      architecture: pick(flags.model, spec.model?.architecture),
      imageSize: pick(flags.imageSize, spec.model?.imageSize),
      width: pick(flags.width, spec.model?.width),
    },
    optimizer: {
      ...spec.optimizer,
      name: pick(flags.optimizer, spec.optimizer?.name),
      learningRate: pick(flags.lr, spec.optimizer?.learningRate),
    },
    schedule: {
      ...spec.schedule,
      kind: pick(flags.schedule, spec.schedule?.kind),
      warmupSteps: pick(flags.warmup, spec.schedule?.warmupSteps),
    },
    batch: { ...spec.batch, P: pick(flags.P, spec.batch?.P), K: pick(flags.K, spec.batch?.K) },
    virtualShards: pick(flags.virtualShards, spec.virtualShards),
    selection: pick(flags.selection, spec.selection),
    margin: pick(flags.margin, spec.margin),
    steps: pick(flags.steps, spec.steps),
    seed: pick(flags.seed, spec.seed),
    checkpointDir: pick(flags.checkpointDir, spec.checkpointDir),
    checkpointEvery: pick(flags.checkpointEvery, spec.checkpointEvery),
    evaluateEvery: pick(flags.evalEvery, spec.evaluateEvery),
  };
}

function stripUndefined<T>(o: T): T {
  return JSON.parse(JSON.stringify(o)) as T;
}

function describeEval(r: EvaluationResult): string {
  const e = r.report;
  return `accuracy ${pct(e.accuracy)} ± ${pct(e.accuracyStd)}  VAL@FAR=${e.farTarget} ${pct(e.val)} ± ${pct(e.valStd)} (FAR ${e.far.toFixed(4)})  AUC ${e.auc.toFixed(4)}  threshold ${e.threshold.toFixed(3)}  [${e.pairs} pairs, ${e.folds} folds]`;
}

async function runTrain(flags: TrainFlags): Promise<void> {
  const out = new Output(flags.json);
  // Validate the whole spec before touching data or the backend: a bad value fails at start.
  const options = stripUndefined(mergeOptions(flags));
  compileTrainOptions(options);
  const source: FaceSource = flags.data
    ? new FolderSource(flags.data, { cropFraction: flags.cropFraction })
    : new SyntheticSource({ identities: flags.syntheticIdentities, imagesPerIdentity: flags.syntheticImages });
  const backend = await selectBackend({ backend: flags.backend, log: (l) => out.info(l) });
  const seed = options.seed ?? 1;
  const eligible = source.index.images.filter((i) => i.length >= 2).length;
  const holdoutCount = flags.holdout ?? Math.max(2, Math.round(eligible * 0.2));
  const split = splitHoldout(source.index, holdoutCount, seed);
  const trainSource = new SubsetSource(source, split.train, 'training split');
  const evalSet = split.holdout.length >= 2 ? { source, pairs: holdoutPairs(source.index, split.holdout, { seed }) } : undefined;
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  options.checkpointDir ??= join('runs', `train-${stamp}`);

  const trainer = flags.resume
    ? await Trainer.resume(
        resolveCheckpointDir(flags.resume),
        trainSource,
        stripUndefined({ ...compileTrainOptions(options), steps: flags.steps, checkpointDir: options.checkpointDir }),
        evalSet,
      )
    : new Trainer(trainSource, options, evalSet);
  const c = trainer.config;
  out.info(`[facenet] data: ${trainSource.description}`);
  if (evalSet)
    out.info(
      `[facenet] held out: ${split.holdout.length} identities, ${evalSet.pairs.pairs.length} pairs (${evalSet.pairs.same.filter(Boolean).length} same)`,
    );
  out.info(
    `[facenet] model: ${c.model.architecture} ${c.model.imageSize}px, ${trainer.model.parameterCount.toLocaleString()} parameters, ${c.model.embeddingDim}-D`,
  );
  out.info(
    `[facenet] batch: P=${c.batch.P} x K=${c.batch.K}, ${c.virtualShards} virtual shard(s), ${c.selection} selection, margin ${c.margin}, ${c.optimizer.name} lr ${c.optimizer.learningRate}`,
  );
  out.info(`[facenet] checkpoints: ${c.checkpointDir}`);
  out.data({
    event: 'start',
    backend: backend.name,
    data: trainSource.description,
    parameters: trainer.model.parameterCount,
    config: c,
    startStep: trainer.step,
  });

  const controller = new AbortController();
  const stop = () => {
    out.info('[facenet] stopping after this step (a checkpoint will be written); press Ctrl-C again to quit at once');
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  if (evalSet && trainer.step === 0) {
    const r = await trainer.evaluate();
    out.line(`untrained: ${describeEval(r)}`);
    out.data({ event: 'evaluation', step: 0, ...r.report });
  }
  const logEvery = flags.logEvery ?? Math.max(1, Math.round(c.steps / 20));
  const bar = out.progress('train', c.steps);
  const t0 = performance.now();
  let images = 0;
  await trainer.run(
    {
      onStep: (r: StepReport) => {
        images += r.images;
        for (const s of r.skipped) out.info(`[facenet] skipped ${s.key}: ${s.reason}`);
        bar.update(r.step + 1, { info: `loss ${r.loss.toFixed(4)} active ${pct(r.activeFraction)}` });
        out.data({
          event: 'step',
          step: r.step + 1,
          loss: r.loss,
          activeFraction: r.activeFraction,
          meanPositiveDistance: r.meanPositiveDistance,
          meanNegativeDistance: r.meanNegativeDistance,
          learningRate: r.learningRate,
          images: r.images,
          imagesPerSecond: r.imagesPerSecond,
          skipped: r.skipped.length,
          timings: r.timings,
        });
        if ((r.step + 1) % logEvery === 0 || r.step === 0) {
          out.line(
            `step ${String(r.step + 1).padStart(String(c.steps).length)}/${c.steps}  loss ${r.loss.toFixed(4)}${r.classificationLoss ? `  classification ${r.classificationLoss.toFixed(3)} (${pct(r.classificationAccuracy)} right)` : ''}  active ${pct(r.activeFraction)}  d(a,p) ${r.meanPositiveDistance.toFixed(3)}  d(a,n) ${r.meanNegativeDistance.toFixed(3)}  lr ${r.learningRate.toPrecision(3)}  ${r.imagesPerSecond.toFixed(0)} img/s`,
          );
        }
      },
      onEvaluate: (r, step) => {
        out.line(`step ${step}: ${describeEval(r)}`);
        out.data({ event: 'evaluation', step, ...r.report });
      },
      onCheckpoint: (dir, step) => out.data({ event: 'checkpoint', step, dir }),
    },
    controller.signal,
  );
  bar.stop();
  if (controller.signal.aborted && trainer.step < c.steps) {
    const dir = await trainer.saveCheckpoint();
    out.info(`[facenet] interrupted at step ${trainer.step}; resume with: facenet train --resume ${dir}`);
  }
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  const seconds = (performance.now() - t0) / 1000;
  const e = trainer.lastEvaluation;
  out.line(
    `done: ${trainer.step} steps, ${images} images in ${seconds.toFixed(1)} s (${(images / seconds).toFixed(0)} img/s), ${trainer.skippedTotal} images skipped`,
  );
  out.line(`checkpoint: ${c.checkpointDir}`);
  out.data({
    event: 'done',
    steps: trainer.step,
    images,
    seconds,
    skipped: trainer.skippedTotal,
    checkpointDir: c.checkpointDir,
    evaluation: e?.report,
  });
  trainer.dispose();
  if (controller.signal.aborted) process.exitCode = 130;
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train an embedding model in this process (built-in synthetic faces unless --data)')
    .option('--data <dir>', 'people-folder dataset: <dir>/<identity>/<image>')
    .option('--config <file>', 'training spec (YAML or JSON); flags override it')
    .option('--model <name>', `architecture: ${ARCHITECTURES.join(', ')}`, oneOf(ARCHITECTURES))
    .option('--image-size <px>', 'input size', int)
    .option('--width <x>', 'channel width multiplier', float)
    .option('--steps <n>', 'total steps (default 1000)', int)
    .option('--P <n>', 'identities per batch (default 45)', int)
    .option('--K <n>', 'images per identity (default 40)', int)
    .option('--selection <strategy>', `online triplet selection: ${SELECTION_STRATEGIES.join(', ')}`, oneOf(SELECTION_STRATEGIES))
    .option('--margin <alpha>', 'triplet margin (default 0.2)', float)
    .option('--optimizer <name>', OPTIMIZERS.join(', '), oneOf(OPTIMIZERS))
    .option('--lr <rate>', 'base learning rate (default: adagrad 0.05, adam 0.001, momentum 0.01)', float)
    .option('--schedule <kind>', 'constant, step, cosine', oneOf(['constant', 'step', 'cosine'] as const))
    .option('--warmup <steps>', 'linear learning-rate warm-up', int)
    .option('--virtual-shards <n>', 'identity-balanced shards per batch (default 1)', int)
    .option('--seed <n>', 'seed of batches, augmentation and the held-out split', int)
    .option('--holdout <n>', 'identities held out for evaluation (default 20% of those with 2+ images; 0 = none)', int)
    .option('--crop-fraction <f>', 'centre crop of each image before resizing (LFW: ~0.5)', float)
    .option('--checkpoint-dir <dir>', 'run folder for checkpoints (default runs/train-<time>)')
    .option('--checkpoint-every <n>', 'checkpoint every n steps (default: at the end)', int)
    .option('--eval-every <n>', 'evaluate every n steps (default: at the end)', int)
    .option('--resume <checkpoint>', 'continue from a checkpoint or run folder')
    .option('--log-every <n>', 'print a line every n steps', int)
    .option('--synthetic-identities <n>', 'identities of the built-in set', int, 60)
    .option('--synthetic-images <n>', 'images per identity of the built-in set', int, 12)
    .option('--backend <name>', 'auto, webgpu, node-gpu, node, wasm, cpu (default: $FACENET_BACKEND or auto)')
    .option('--json', 'JSON events on stdout, one per line', false)
    .action((flags: TrainFlags) => runTrain(flags));
}
