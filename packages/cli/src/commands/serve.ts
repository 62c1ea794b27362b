import { Command } from 'commander';
import { resolve } from 'node:path';
import { ImageEmbedder, selectBackend } from '@facenet/core';
import { ApiTokens, hasTokens, isLoopback, loadTokens } from '@facenet/coordinator';
import { exportedEmbedder } from '../serve/embedder';
import { createEmbeddingService, DEFAULT_LIMITS } from '../serve/embedding-service';
import { embedderForCommand, ENGINE_FLAG, loadModelForCommand, thresholdOf } from '../model-loader';
import { float, int } from '../parse';
import { Output } from '../output';
import { UsageError } from '../errors';

interface ServeFlags {
  checkpoint?: string;
  model?: string;
  job?: string;
  api: string;
  token?: string;
  host: string;
  port: number;
  gallery?: string;
  threshold?: number;
  cropFraction?: number;
  maxImages: number;
  maxImageBytes: number;
  maxBatch: number;
  maxDelayMs: number;
  tokensFile?: string;
  backend?: string;
  engine?: string;
  json: boolean;
}

/** The job's best checkpoint by the evaluator's VAL, else its newest, as the coordinator lists them (a folder on the shared checkpoint volume). */
async function bestCheckpointOf(
  job: string,
  api: string,
  token: string | undefined,
): Promise<{ dir: string; step: number; best: boolean }> {
  const res = await fetch(`${api.replace(/\/$/, '')}/v1/jobs/${encodeURIComponent(job)}/checkpoints`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  if (!res.ok) throw new UsageError(`cannot list the checkpoints of job ${job} at ${api}: HTTP ${res.status} ${await res.text()}`);
  const list = (await res.json()) as { dir: string; step: number; best: boolean }[];
  const pick = list.find((c) => c.best) ?? list.at(-1);
  if (!pick) throw new UsageError(`job ${job} has no checkpoint yet`);
  return pick;
}

interface Loaded {
  embedder: ImageEmbedder;
  source: { dir: string; step: number };
  cropFraction: number;
  threshold: { threshold: number; from: string };
}

async function loadCheckpoint(flags: ServeFlags, tokens: ApiTokens, out: Output): Promise<Loaded> {
  let checkpoint = flags.checkpoint as string;
  if (flags.job) {
    // The coordinator accepts the tokens this service does (the same file in Kubernetes): a read one lists checkpoints.
    const c = await bestCheckpointOf(flags.job, flags.api, flags.token ?? tokens.read[0] ?? tokens.admin[0]);
    out.info(
      `[facenet] job ${flags.job}: ${c.best ? 'best checkpoint by VAL' : 'newest checkpoint (none evaluated yet)'}, step ${c.step}: ${c.dir}`,
    );
    checkpoint = c.dir;
  }
  const { model, manifest, cropFraction, dir } = await loadModelForCommand(checkpoint, flags.backend, out, flags.cropFraction);
  return {
    embedder: await embedderForCommand(model, flags.engine, out),
    source: { dir, step: manifest.step },
    cropFraction,
    threshold: thresholdOf(manifest, flags.threshold),
  };
}

async function loadExport(flags: ServeFlags, out: Output): Promise<Loaded> {
  await selectBackend({ backend: flags.backend, log: (l) => out.info(l) });
  const dir = resolve(flags.model as string);
  const { embedder, metadata } = await exportedEmbedder(dir, flags.engine, (l) => out.info(l));
  const v = metadata.verification;
  return {
    embedder,
    source: { dir, step: metadata.checkpoint.step },
    cropFraction: flags.cropFraction ?? metadata.preprocessing.cropFraction,
    threshold:
      flags.threshold !== undefined
        ? { threshold: flags.threshold, from: '--threshold' }
        : v
          ? { threshold: v.threshold, from: `the export's evaluation at step ${v.step}` }
          : { threshold: 1.1, from: 'default 1.1 (the export has no evaluation; pass --threshold)' },
  };
}

async function runServe(flags: ServeFlags): Promise<void> {
  const out = new Output(flags.json);
  if ([flags.checkpoint, flags.job, flags.model].filter(Boolean).length !== 1)
    throw new UsageError(
      'give one of --checkpoint DIR, --job ID (its best checkpoint, from the coordinator at --api) or --model DIR (an ONNX or tfjs export)',
    );
  const tokens = loadTokens(flags.tokensFile);
  if (!isLoopback(flags.host) && !hasTokens(tokens))
    throw new UsageError(
      `--host ${flags.host} serves beyond this machine: give --tokens-file (or $FACENET_API_TOKEN_READ) so callers must present a token`,
    );
  const loaded = flags.model ? await loadExport(flags, out) : await loadCheckpoint(flags, tokens, out);
  const { threshold, from } = loaded.threshold;
  const { app, gallery } = await createEmbeddingService({
    model: loaded.embedder,
    checkpoint: loaded.source,
    cropFraction: loaded.cropFraction,
    threshold,
    limits: { maxImages: flags.maxImages, maxImageBytes: flags.maxImageBytes, maxBatch: flags.maxBatch, maxDelayMs: flags.maxDelayMs },
    tokens,
    host: flags.host,
    gallery: flags.gallery,
    log: (l) => out.info(l),
  });
  const address = await app.listen({ host: flags.host, port: flags.port });
  out.info(`[facenet] threshold ${threshold.toFixed(3)} (${from})`);
  out.data({ event: 'ready', url: address, gallery: gallery ? gallery.names.length : null });
  out.line(
    `serving ${loaded.embedder.architecture} (step ${loaded.source.step}) at ${address}: POST /v1/embed, /v1/verify${gallery ? ', /v1/identify' : ''}; /metrics, /healthz`,
  );
  const stop = async () => {
    await app.close();
    await loaded.embedder.dispose();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('an HTTP embedding service for a checkpoint: POST /v1/embed, /v1/verify, /v1/identify (against a gallery folder)')
    .option('--checkpoint <dir>', 'checkpoint or run folder (the newest step-* is taken)')
    .option('--model <dir>', 'an export (facenet export --format onnx or tfjs): serve it instead of a checkpoint')
    .option('--job <id>', "serve this job's best checkpoint (asks the coordinator at --api; the folder must be readable here)")
    .option('--api <url>', 'coordinator API, for --job', process.env.FACENET_API ?? 'http://127.0.0.1:8080')
    .option('--token <token>', 'coordinator API token, for --job ($FACENET_TOKEN)', process.env.FACENET_TOKEN)
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0 = any)', int, 8090)
    .option('--gallery <dir>', 'people folder (one subfolder per person) embedded at start, for /v1/identify')
    .option('--threshold <d2>', "squared distance below which two faces match (default: the checkpoint's evaluation)", float)
    .option('--crop-fraction <f>', 'centre crop before resizing (default: the crop the model was trained with)', float)
    .option('--max-images <n>', 'images per request', int, DEFAULT_LIMITS.maxImages)
    .option('--max-image-bytes <n>', 'bytes per encoded image', int, DEFAULT_LIMITS.maxImageBytes)
    .option('--max-batch <n>', 'images embedded at once, across concurrent requests', int, DEFAULT_LIMITS.maxBatch)
    .option('--max-delay-ms <ms>', 'how long a batch waits to fill', int, DEFAULT_LIMITS.maxDelayMs)
    .option(
      '--tokens-file <file>',
      'bearer tokens, `read:TOKEN` lines ($FACENET_API_TOKENS_FILE; also $FACENET_API_TOKEN_READ)',
      process.env.FACENET_API_TOKENS_FILE,
    )
    .option('--backend <name>', 'compute backend')
    .option(...ENGINE_FLAG)
    .option('--json', 'JSON ready event on stdout', false)
    .action((flags: ServeFlags) => runServe(flags));
}
