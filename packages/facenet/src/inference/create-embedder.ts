import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { currentBackend } from '../backend/select-backend';
import { gpuAdapter } from '../backend/webgpu';
import { ConfigError, InferenceError } from '../errors';
import { traceInferenceGraph } from '../export/inference-graph';
import { writeOnnx } from '../export/onnx-writer';
import type { ExportMetadata } from '../export/export-model';
import { readExportMetadata } from '../export/export-files';
import { EmbeddingModel } from '../model/embedding-model';
import { rngFor } from '../util/random';
import { ImageEmbedder, INFERENCE_ENGINES, InferenceEngineChoice, tfjsEmbedder } from './image-embedder';
import { OnnxThread, onnxThreadAvailable } from './onnx-thread';

/** Largest |ORT - tfjs| over a check batch's embedding components before ORT is refused (measured: ~6e-7). */
export const ENGINE_AGREEMENT_TOLERANCE = 1e-4;
const CHECK_IMAGES = 4;

export interface EmbedderOptions {
  /** 'auto' (default; FACENET_INFERENCE_ENGINE): ONNX Runtime unless a GPU backend trains here. */
  engine?: InferenceEngineChoice;
  /** ORT's intra-op threads (FACENET_INFERENCE_THREADS; default: the cores this process may use). */
  threads?: number;
  /** Whether dispose() disposes the model too (default false: the caller keeps it). */
  ownsModel?: boolean;
  log?: (line: string) => void;
}

/** The engine and thread count from options, else the environment, else the defaults; names a bad value. */
export function inferenceSettings(o: EmbedderOptions = {}, env = process.env): { engine: InferenceEngineChoice; threads: number } {
  const engine = o.engine ?? ((env.FACENET_INFERENCE_ENGINE || 'auto') as InferenceEngineChoice);
  if (!INFERENCE_ENGINES.includes(engine))
    throw new ConfigError('FACENET_INFERENCE_ENGINE', `"${engine}" is not one of ${INFERENCE_ENGINES.join(', ')}`);
  const raw = o.threads ?? (env.FACENET_INFERENCE_THREADS ? Number(env.FACENET_INFERENCE_THREADS) : availableParallelism());
  if (!Number.isInteger(raw) || raw < 1 || raw > 256)
    throw new ConfigError('FACENET_INFERENCE_THREADS', `"${env.FACENET_INFERENCE_THREADS ?? raw}" is not a whole number from 1 to 256`);
  return { engine, threads: raw };
}

/** Why 'auto' keeps TensorFlow.js here, or undefined when ONNX Runtime (on the CPU) should serve. */
function tfjsPreferred(): string | undefined {
  const backend = currentBackend()?.name;
  if (backend === 'node-gpu') return 'the node-gpu backend runs on CUDA';
  if (backend === 'webgpu' && gpuAdapter()?.software === false) return `the webgpu backend runs on ${gpuAdapter()?.description || 'a GPU'}`;
  if (!onnxThreadAvailable()) return 'ONNX Runtime runs from the built package only (npx tsc -b)';
  return undefined;
}

function onnxEmbedder(thread: OnnxThread, architecture: string, embeddingDim: number, dispose: () => void): ImageEmbedder {
  return {
    engine: 'onnxruntime',
    architecture,
    imageSize: thread.imageSize,
    embeddingDim,
    embed: (pixels, count) => thread.run(pixels, count),
    async dispose() {
      await thread.close();
      dispose();
    },
  };
}

/** Seeded images in [-1, 1] that both engines embed before ORT is trusted with a model. */
function checkBatch(size: number): Float32Array {
  const rng = rngFor('inference-engine-check');
  return Float32Array.from({ length: CHECK_IMAGES * size * size * 3 }, () => rng() * 2 - 1);
}

/**
 * The embedder for a trained model. ONNX Runtime runs the model's exported inference graph (built
 * in memory, no file) on a thread of its own, checked on load against TensorFlow.js: where the two
 * disagree by more than ENGINE_AGREEMENT_TOLERANCE, or ORT cannot load the model, 'auto' says so
 * and uses TensorFlow.js, and an explicit 'onnxruntime' throws.
 */
export async function createEmbedder(model: EmbeddingModel, o: EmbedderOptions = {}): Promise<ImageEmbedder> {
  const { engine, threads } = inferenceSettings(o);
  const log = o.log ?? (() => {});
  const tfjs = tfjsEmbedder(model, { owns: o.ownsModel });
  if (engine === 'tfjs') return tfjs;
  const keepTfjs = engine === 'auto' ? tfjsPreferred() : undefined;
  if (keepTfjs) {
    log(`[facenet] inference: TensorFlow.js (${keepTfjs})`);
    return tfjs;
  }
  let thread: OnnxThread | undefined;
  try {
    if (!onnxThreadAvailable()) throw new InferenceError('ONNX Runtime runs from the built package only (npx tsc -b)');
    const size = model.config.imageSize;
    thread = await OnnxThread.start(writeOnnx(traceInferenceGraph(model), {}, 'in-memory'), size, threads);
    const pixels = checkBatch(size);
    const expected = await tfjs.embed(pixels, CHECK_IMAGES);
    const got = await thread.run(pixels.slice(), CHECK_IMAGES);
    let worst = 0;
    for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs((got[i] as number) - (expected[i] as number)));
    if (!(worst <= ENGINE_AGREEMENT_TOLERANCE))
      throw new InferenceError(
        `ONNX Runtime and TensorFlow.js disagree on this model by ${worst.toExponential(2)} (> ${ENGINE_AGREEMENT_TOLERANCE})`,
      );
    log(
      `[facenet] inference: ONNX Runtime, ${threads} thread${threads === 1 ? '' : 's'} (agrees with TensorFlow.js to ${worst.toExponential(1)})`,
    );
    return onnxEmbedder(thread, model.config.architecture, model.config.embeddingDim, () => void tfjs.dispose());
  } catch (err) {
    await thread?.close();
    if (engine === 'onnxruntime') throw err;
    log(`[facenet] inference: TensorFlow.js (${(err as Error).message})`);
    return tfjs;
  }
}

/** ONNX Runtime on a model written by `facenet export --format onnx` (model.onnx and facenet.json). */
export async function exportedOnnxEmbedder(
  dir: string,
  o: EmbedderOptions = {},
): Promise<{ embedder: ImageEmbedder; metadata: ExportMetadata }> {
  const { threads } = inferenceSettings(o);
  const metadata = await readExportMetadata(dir);
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, 'model.onnx'));
  } catch (err) {
    throw new InferenceError(
      `${dir} is not an ONNX export of facenet (no readable model.onnx: ${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
  const size = metadata.model.imageSize;
  const dim = metadata.model.embeddingDim;
  if (!onnxThreadAvailable()) throw new InferenceError('ONNX Runtime runs from the built package only (npx tsc -b)');
  const thread = await OnnxThread.start(new Uint8Array(bytes), size, threads);
  o.log?.(`[facenet] inference: ONNX Runtime, ${threads} thread${threads === 1 ? '' : 's'}`);
  return { embedder: onnxEmbedder(thread, `${metadata.model.architecture} (exported)`, dim, () => {}), metadata };
}

/**
 * Runs `use` with an embedder for `model` and disposes the embedder after (never the model). For a
 * service that embeds once per checkpoint: the engine line is logged when it differs from the last.
 */
export async function withEmbedder<T>(model: EmbeddingModel, o: EmbedderOptions, use: (e: ImageEmbedder) => Promise<T>): Promise<T> {
  const embedder = await createEmbedder(model, { ...o, ownsModel: false });
  try {
    return await use(embedder);
  } finally {
    await embedder.dispose();
  }
}

/** A log that passes a line on only when it differs from the previous one (an engine line per checkpoint is noise). */
export function logChanges(log: (line: string) => void): (line: string) => void {
  let last: string | undefined;
  return (line) => {
    if (line !== last) log(line);
    last = line;
  };
}
