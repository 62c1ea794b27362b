/**
 * Miner throughput: time and peak RSS growth to mine N random unit 128-D embeddings (10 per
 * identity), with the exact blocked scan and with the restricted search (each anchor's negatives
 * among its identity's nearest identities by centroid, plus a random share), measured one after
 * the other in one run; the restricted search's recall against the exact one on --recall-n
 * embeddings; the restricted search with its scan on two threads; and embeddings/s of the
 * checkpoint embedding pass (decode + embed of synthetic faces, --embed-model at its default
 * size) through TensorFlow.js and through ONNX Runtime (the miner's engine), alternated, two
 * rounds each after a warm-up, median; `checkpointSeconds` adds the restricted search at n to
 * the time each engine would take to embed n images at its measured rate.
 *
 *   npx tsx --expose-gc bench/miner-throughput.ts [--n 100000] [--recall-n 20000] [--exact true] [--dim 128] [--per-identity 10] [--big restricted,parallel]
 *     [--embed-images 2000] [--embed-model inception-small]
 *
 * RSS growth is measured from the RSS before each call; a call made after another starts from a
 * heap the first one grew, so for a fair peak pass one method per process with --big.
 *
 * The exact scan at n = 100,000 takes minutes here (--exact false skips it).
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    'recall-n': { type: 'string', default: '20000' },
    exact: { type: 'string', default: 'true' },
    dim: { type: 'string', default: '128' },
    'per-identity': { type: 'string', default: '10' },
    'embed-images': { type: 'string', default: '2000' },
    'embed-model': { type: 'string', default: 'inception-small' },
    big: { type: 'string', default: 'restricted,parallel' },
  },
});

type Core = typeof import('@facenet/core');

/**
 * Unit embeddings with the structure of a trained model's: identities in groups of 20 similar
 * ones (group centre + identity offset), samples around their identity (d(a,p) ~ 0.6, most
 * negatives easy, a few tenths of a percent semi-hard, as the miner sees on real faces).
 */
function embeddings(core: Core, n: number, dim: number, per: number): { emb: Float32Array; labels: Int32Array } {
  const rng = core.rngFor('miner-bench', n);
  const emb = new Float32Array(new SharedArrayBuffer(n * dim * 4)); // as the miner holds its embeddings
  const group = new Float32Array(dim);
  const identity = new Float32Array(dim);
  for (let i = 0; i < n; i++) {
    if (i % (per * 20) === 0) for (let d = 0; d < dim; d++) group[d] = rng() - 0.5;
    if (i % per === 0) for (let d = 0; d < dim; d++) identity[d] = group[d]! + 0.5 * (rng() - 0.5);
    let norm = 0;
    for (let d = 0; d < dim; d++) {
      const v = identity[d]! + 0.7 * (rng() - 0.5);
      emb[i * dim + d] = v;
      norm += v * v;
    }
    for (let d = 0; d < dim; d++) emb[i * dim + d] = emb[i * dim + d]! / Math.sqrt(norm);
  }
  return { emb, labels: Int32Array.from({ length: n }, (_, i) => Math.floor(i / per)) };
}

/** Seconds and peak RSS growth (MB) of one call (RSS sampled every 20 ms while it awaits, and at its end). */
async function measure<T>(fn: () => T | Promise<T>): Promise<{ value: T; seconds: number; peakRssDeltaMB: number }> {
  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t0 = performance.now();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  peak = Math.max(peak, process.memoryUsage().rss);
  clearInterval(sampler);
  return { value, seconds, peakRssDeltaMB: (peak - base) / 2 ** 20 };
}

async function main(): Promise<void> {
  const core = await import('@facenet/core');
  const backend = await core.selectBackend({ log: null });
  const n = Number(values.n),
    dim = Number(values.dim),
    per = Number(values['per-identity']);
  const options = { margin: 0.2, hardness: 0.5 };
  const target = (t: { dap: number }) => t.dap + options.margin * (1 - options.hardness);

  const big = embeddings(core, n, dim, per);
  const methods = values.big.split(',');
  const restricted = methods.includes('restricted')
    ? await measure(() => core.mineTripletsRestricted(big.emb, dim, big.labels, options))
    : undefined;
  const parallel = methods.includes('parallel')
    ? await measure(() => core.mineTripletsRestrictedParallel(big.emb, dim, big.labels, options))
    : undefined;
  const exact = values.exact === 'true' ? await measure(() => core.mineTriplets(big.emb, dim, big.labels, options)) : undefined;

  const rn = Number(values['recall-n']);
  const small = embeddings(core, rn, dim, per);
  const exactSmallRun = await measure(() => core.mineTriplets(small.emb, dim, small.labels, options));
  const restrictedSmallRun = await measure(() => core.mineTripletsRestricted(small.emb, dim, small.labels, options));
  const exactSmall = exactSmallRun.value.triplets;
  const restrictedSmall = restrictedSmallRun.value.triplets;

  const source = new core.SyntheticSource({ identities: 200, imagesPerIdentity: Math.ceil(Number(values['embed-images']) / 200) });
  const keys = source.index.images.flat().slice(0, Number(values['embed-images']));
  const model = new core.EmbeddingModel({ architecture: values['embed-model'] as never });
  const engines = { tfjs: core.tfjsEmbedder(model), onnxruntime: await core.createEmbedder(model, { engine: 'onnxruntime' }) };
  const embedSeconds = { tfjs: [] as number[], onnxruntime: [] as number[] };
  for (const e of Object.values(engines)) await core.embedImages(e, source, keys.slice(0, 64)); // warm-up
  await core.embedImages(engines.tfjs, source, keys); // renders are cached from here
  for (let round = 0; round < 2; round++)
    for (const [name, e] of Object.entries(engines)) {
      const t = performance.now();
      await core.embedImages(e, source, keys);
      embedSeconds[name as keyof typeof engines].push((performance.now() - t) / 1000);
    }
  await engines.onnxruntime.dispose();
  model.dispose();
  const perSecond = (xs: number[]) => keys.length / (xs.reduce((a, b) => a + b) / xs.length);
  const rates = { tfjs: perSecond(embedSeconds.tfjs), onnxruntime: perSecond(embedSeconds.onnxruntime) };

  const summary = (r: {
    value: { triplets: { length: number }; stats: { minedFraction: number; semiHard: number; memoryBoundBytes: number } };
    seconds: number;
    peakRssDeltaMB: number;
  }) => ({
    seconds: r.seconds,
    peakRssDeltaMB: r.peakRssDeltaMB,
    triplets: r.value.triplets.length,
    minedFraction: r.value.stats.minedFraction,
    semiHardFraction: r.value.stats.semiHard,
    memoryBoundMB: r.value.stats.memoryBoundBytes / 2 ** 20,
  });
  process.stdout.write(
    `${JSON.stringify(
      {
        benchmark: 'miner-throughput',
        backend: backend.name,
        n,
        dim,
        perIdentity: per,
        restricted: restricted && summary(restricted),
        restrictedTwoThreads: parallel && summary(parallel),
        exact: exact && summary(exact),
        speedup: exact && restricted && exact.seconds / restricted.seconds,
        recall: {
          n: rn,
          exactSeconds: exactSmallRun.seconds,
          restrictedSeconds: restrictedSmallRun.seconds,
          exactTriplets: exactSmall.length,
          restrictedTriplets: restrictedSmall.length,
          recall: core.miningRecall(exactSmall, restrictedSmall, target),
          recallWithin001: core.miningRecall(exactSmall, restrictedSmall, target, 0.01),
        },
        fullMatrixMB: (n * n * 4) / 2 ** 20,
        embedding: {
          model: model.config.architecture,
          imageSize: model.config.imageSize,
          images: keys.length,
          embeddingsPerSecond: rates,
          onnxruntimeOverTfjs: rates.onnxruntime / rates.tfjs,
          threads: core.inferenceSettings().threads,
          checkpointSeconds: restricted && {
            n,
            tfjs: n / rates.tfjs + restricted.seconds,
            onnxruntime: n / rates.onnxruntime + restricted.seconds,
          },
        },
      },
      null,
      2,
    )}\n`,
  );
}

void main();
