import { Command } from 'commander';
import { loadTokens } from '@facenet/coordinator';
import { createEmbeddingService, DEFAULT_LIMITS } from '../serve/embedding-service';
import { loadModelForCommand, thresholdOf } from '../model-loader';
import { float, int } from '../parse';
import { Output } from '../output';

interface ServeFlags {
  checkpoint: string;
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
  json: boolean;
}

async function runServe(flags: ServeFlags): Promise<void> {
  const out = new Output(flags.json);
  const { model, manifest, cropFraction } = await loadModelForCommand(flags.checkpoint, flags.backend, out, flags.cropFraction);
  const { threshold, from } = thresholdOf(manifest, flags.threshold);
  const { app, gallery } = await createEmbeddingService({
    model,
    cropFraction,
    threshold,
    limits: { maxImages: flags.maxImages, maxImageBytes: flags.maxImageBytes, maxBatch: flags.maxBatch, maxDelayMs: flags.maxDelayMs },
    tokens: loadTokens(flags.tokensFile),
    host: flags.host,
    gallery: flags.gallery,
    log: (l) => out.info(l),
  });
  const address = await app.listen({ host: flags.host, port: flags.port });
  out.info(`[facenet] threshold ${threshold.toFixed(3)} (${from})`);
  out.data({ event: 'ready', url: address, gallery: gallery ? gallery.names.length : null });
  out.line(
    `serving ${manifest.model.architecture} (step ${manifest.step}) at ${address}: POST /v1/embed, /v1/verify${gallery ? ', /v1/identify' : ''}; /metrics, /healthz`,
  );
  const stop = async () => {
    await app.close();
    model.dispose();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('an HTTP embedding service for a checkpoint: POST /v1/embed, /v1/verify, /v1/identify (against a gallery folder)')
    .requiredOption('--checkpoint <dir>', 'checkpoint or run folder (the newest step-* is taken)')
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
    .option('--json', 'JSON ready event on stdout', false)
    .action((flags: ServeFlags) => runServe(flags));
}
