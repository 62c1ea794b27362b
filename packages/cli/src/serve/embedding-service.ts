import Fastify, { FastifyInstance } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { z } from 'zod';
import {
  cropToFloat,
  decodeSquare,
  decodeSquareBytes,
  ImageDecodeError,
  ImageEmbedder,
  scanPeopleFolder,
  SquareImage,
  squaredDistance,
  tf,
} from '@facenet/core';
import { ApiTokens, registerAccessControl } from '@facenet/coordinator';
import { MicroBatcher } from './micro-batcher';

export interface ServiceLimits {
  /** Images in one request. */
  maxImages: number;
  /** Bytes of one encoded image (after base64 decoding). */
  maxImageBytes: number;
  /** Images the model embeds at once, across concurrent requests. */
  maxBatch: number;
  /** How long the first image of an idle service's batch waits for others (0: none; under load batches fill while the previous one runs). */
  maxDelayMs: number;
}

export const DEFAULT_LIMITS: ServiceLimits = { maxImages: 32, maxImageBytes: 4 << 20, maxBatch: 32, maxDelayMs: 0 };

export interface EmbeddingServiceOptions {
  /** ONNX Runtime on its own thread (or TensorFlow.js, the fallback): the event loop stays free for /healthz. */
  model: ImageEmbedder;
  /** Centre crop before resizing: the one the model was trained with. */
  cropFraction: number;
  /** Squared distance below which two faces are the same person. */
  threshold: number;
  limits: ServiceLimits;
  tokens: ApiTokens;
  host: string;
  /** Where the model came from, shown by /healthz. */
  checkpoint: { dir: string; step: number };
  /** A people folder (one subfolder per person) embedded at start, for /v1/identify. */
  gallery?: string;
  log?: (line: string) => void;
}

/** A request's fault, answered 4xx with the field that is wrong. */
class InputError extends Error {
  constructor(
    readonly field: string,
    message: string,
    readonly status = 400,
  ) {
    super(`${field}: ${message}`);
  }
}

const image = z.string().min(1);
const bodies = {
  embed: z.object({ images: z.array(image).min(1) }),
  verify: z.object({ a: image, b: image }),
  identify: z.object({ images: z.array(image).min(1), k: z.number().int().min(1).max(100).default(1) }),
};

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0] as z.core.$ZodIssue;
    throw new InputError(issue.path.join('.') || 'body', issue.message);
  }
  return r.data;
}

interface Gallery {
  names: string[];
  /** Identity of each row. */
  labels: Int32Array;
  embeddings: Float32Array;
}

/**
 * `facenet serve`: embeddings of posted images from one checkpoint or exported model. Images arrive base64-encoded
 * in JSON (any format `facenet embed` reads), are decoded on libvips' threads, and are embedded in
 * batches gathered across concurrent requests (MicroBatcher). Access control is the coordinator's
 * (tokens, Host and Origin checks); any valid token may call every route.
 */
export async function createEmbeddingService(o: EmbeddingServiceOptions): Promise<{ app: FastifyInstance; gallery?: Gallery }> {
  const { model, limits } = o;
  const size = model.imageSize;
  const dim = model.embeddingDim;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'facenet_serve_process_' });
  const latency = new Histogram({
    name: 'facenet_serve_request_seconds',
    help: 'Request latency by route and status',
    labelNames: ['route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const batchSizes = new Histogram({
    name: 'facenet_serve_batch_size',
    help: 'Images per model batch',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128],
    registers: [registry],
  });
  const images = new Counter({ name: 'facenet_serve_images_total', help: 'Images embedded', registers: [registry] });
  const rejected = new Counter({
    name: 'facenet_serve_rejected_images_total',
    help: 'Images refused (undecodable or too large)',
    registers: [registry],
  });

  const embedPixels = async (batch: Float32Array[]): Promise<Float32Array[]> => {
    const per = size * size * 3;
    const data = new Float32Array(batch.length * per);
    batch.forEach((p, i) => data.set(p, i * per));
    const values = await model.embed(data, batch.length);
    images.inc(batch.length);
    return batch.map((_, i) => values.slice(i * dim, (i + 1) * dim));
  };
  const batcher = new MicroBatcher(embedPixels, { ...limits, onBatch: (n) => batchSizes.observe(n) });

  const decode = async (b64: string, field: string): Promise<Float32Array> => {
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length > limits.maxImageBytes) {
      rejected.inc();
      throw new InputError(field, `${bytes.length} bytes exceeds the limit of ${limits.maxImageBytes}`, 413);
    }
    try {
      return inputPixels(await decodeSquareBytes(bytes, field, size, o.cropFraction));
    } catch (err) {
      if (!(err instanceof ImageDecodeError)) throw err;
      rejected.inc();
      throw new InputError(field, `not a readable image (${err.message.replace(`${field}: `, '')})`, 422);
    }
  };
  const embedAll = async (list: string[], field: string): Promise<Float32Array[]> => {
    if (list.length > limits.maxImages)
      throw new InputError(field, `${list.length} images exceeds the limit of ${limits.maxImages} per request`, 413);
    const pixels = await Promise.all(list.map((b, i) => decode(b, `${field}[${i}]`)));
    return batcher.submit(pixels);
  };

  let gallery: Gallery | undefined;
  if (o.gallery) gallery = await embedGallery(o.gallery, model, o.cropFraction, embedPixels, o.log);

  const app = Fastify({ logger: false, bodyLimit: Math.ceil((limits.maxImages * limits.maxImageBytes * 4) / 3) + (64 << 10) });
  registerAccessControl(app, { tokens: o.tokens, host: o.host, writeScope: 'read' });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unknown';
    latency.observe({ route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof InputError) return reply.code(err.status).send({ error: err.message, field: err.field });
    const status = (err as { statusCode?: number }).statusCode;
    if (status && status < 500) return reply.code(status).send({ error: (err as Error).message });
    o.log?.(`[serve] ${(err as Error).stack ?? err}`);
    return reply.code(500).send({ error: (err as Error).message });
  });
  const info = {
    checkpoint: o.checkpoint,
    architecture: model.architecture,
    engine: model.engine,
    // Where the model computes: ONNX Runtime's CPU provider, or TensorFlow.js's backend (webgpu, node-gpu, wasm...).
    backend: model.engine === 'tfjs' ? tf.getBackend() : 'onnxruntime-cpu',
    imageSize: size,
    embeddingDim: dim,
    cropFraction: o.cropFraction,
    threshold: o.threshold,
    gallery: gallery ? { identities: gallery.names.length, images: gallery.labels.length } : null,
    limits,
  };
  app.get('/healthz', async () => ({ ok: true, ...info }));
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));

  app.post('/v1/embed', async (req) => {
    const body = parse(bodies.embed, req.body);
    const e = await embedAll(body.images, 'images');
    return { dim, embeddings: e.map((v) => Array.from(v)) };
  });
  app.post('/v1/verify', async (req) => {
    const body = parse(bodies.verify, req.body);
    const [a, b] = await Promise.all([decode(body.a, 'a'), decode(body.b, 'b')]);
    const [ea, eb] = (await batcher.submit([a, b])) as [Float32Array, Float32Array];
    const distance = squaredDistance(ea, 0, eb, 0, dim);
    return { distance, threshold: o.threshold, same: distance < o.threshold };
  });
  app.post('/v1/identify', async (req) => {
    const body = parse(bodies.identify, req.body);
    if (!gallery) throw new InputError('gallery', 'this service has no gallery (start it with --gallery DIR)', 409);
    const g = gallery;
    const e = await embedAll(body.images, 'images');
    return {
      threshold: o.threshold,
      results: e.map((q) => {
        const best = nearestIdentities(g, q, body.k);
        const top = best[0];
        return { identity: top && top.distance < o.threshold ? top.identity : null, candidates: best };
      }),
    };
  });
  return { app, gallery };
}

/** A decoded square image as the model's input: [S, S, 3] in [-1, 1] (no augmentation). */
function inputPixels(img: SquareImage): Float32Array {
  const out = new Float32Array(img.side * img.side * 3);
  cropToFloat(img, img.side, null, false, out, 0);
  return out;
}

/** The k identities nearest to `q`, each by its closest gallery image. A scan: galleries of up to ~1e5 faces answer in milliseconds. */
function nearestIdentities(g: Gallery, q: Float32Array, k: number): { identity: string; distance: number }[] {
  const best = new Float64Array(g.names.length).fill(Infinity);
  for (let r = 0; r < g.labels.length; r++) {
    const d = squaredDistance(g.embeddings, r, q, 0, q.length);
    const id = g.labels[r] as number;
    if (d < (best[id] as number)) best[id] = d;
  }
  return [...best.keys()]
    .sort((a, b) => (best[a] as number) - (best[b] as number))
    .slice(0, k)
    .map((i) => ({ identity: g.names[i] as string, distance: best[i] as number }));
}

async function embedGallery(
  root: string,
  model: ImageEmbedder,
  cropFraction: number,
  embed: (batch: Float32Array[]) => Promise<Float32Array[]>,
  log?: (line: string) => void,
): Promise<Gallery> {
  const index = scanPeopleFolder(root);
  const size = model.imageSize;
  const dim = model.embeddingDim;
  const rows: { label: number; pixels: Float32Array }[] = [];
  let skipped = 0;
  for (const [label, paths] of index.images.entries()) {
    for (const path of paths) {
      try {
        rows.push({ label, pixels: inputPixels(await decodeSquare(path, size, cropFraction)) });
      } catch (err) {
        if (!(err instanceof ImageDecodeError)) throw err;
        skipped++;
        log?.(`[serve] gallery: skipped ${path}: ${err.message}`);
      }
    }
  }
  const embeddings = new Float32Array(rows.length * dim);
  for (let i = 0; i < rows.length; i += 64) {
    const out = await embed(rows.slice(i, i + 64).map((r) => r.pixels));
    out.forEach((e, k) => embeddings.set(e, (i + k) * dim));
  }
  log?.(`[serve] gallery ${root}: ${index.names.length} identities, ${rows.length} images${skipped ? `, ${skipped} skipped` : ''}`);
  return { names: index.names, labels: Int32Array.from(rows, (r) => r.label), embeddings };
}
