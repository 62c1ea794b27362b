/**
 * Miner throughput: time and peak memory to mine N random unit 128-D embeddings (10 per
 * identity) with the blocked scan, against the memory an N x N float32 matrix would take; and
 * embeddings/s of the checkpoint embedding pass (tiny net on synthetic faces).
 *
 *   npx tsx bench/miner-throughput.ts [--n 100000] [--dim 128] [--per-identity 10]
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { n: { type: 'string', default: '100000' }, dim: { type: 'string', default: '128' }, 'per-identity': { type: 'string', default: '10' }, 'embed-images': { type: 'string', default: '2000' } } });

async function main(): Promise<void> {
  const core = await import('@facenet/core');
  const backend = await core.selectBackend({ log: null });
  const n = Number(values.n), dim = Number(values.dim), per = Number(values['per-identity']);
  const rng = core.rngFor('miner-bench');
  const emb = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let d = 0; d < dim; d++) { const v = rng() - 0.5; emb[i * dim + d] = v; norm += v * v; }
    for (let d = 0; d < dim; d++) emb[i * dim + d] = emb[i * dim + d]! / Math.sqrt(norm);
  }
  const labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / per));
  const base = process.memoryUsage().rss;
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  // The scan is synchronous: sample memory from inside it too, between tiles.
  const t0 = performance.now();
  const { triplets, stats } = core.mineTriplets(emb, dim, labels, { margin: 0.2, hardness: 0.5 });
  const mineSeconds = (performance.now() - t0) / 1000;
  peak = Math.max(peak, process.memoryUsage().rss);
  const t1 = performance.now();
  const conf = core.confusableIdentities(emb, dim, labels, 5);
  const confusableSeconds = (performance.now() - t1) / 1000;
  clearInterval(sampler);

  const source = new core.SyntheticSource({ identities: 200, imagesPerIdentity: Math.ceil(Number(values['embed-images']) / 200) });
  const keys = source.index.images.flat().slice(0, Number(values['embed-images']));
  const model = new core.EmbeddingModel({ architecture: 'tiny', imageSize: 48 });
  await core.embedImages(model, source, keys.slice(0, 64)); // warm-up (renders are cached from here)
  await core.embedImages(model, source, keys);
  const t2 = performance.now();
  await core.embedImages(model, source, keys);
  const embedSeconds = (performance.now() - t2) / 1000;
  model.dispose();

  process.stdout.write(`${JSON.stringify({
    benchmark: 'miner-throughput', backend: backend.name, n, dim, perIdentity: per,
    mineSeconds, pairsScanned: n * n, triplets: triplets.length, minedFraction: stats.minedFraction,
    confusableSeconds, identities: conf.size,
    peakRssDeltaMB: (peak - base) / 2 ** 20, memoryBoundMB: stats.memoryBoundBytes / 2 ** 20, fullMatrixMB: (n * n * 4) / 2 ** 20,
    embedding: { model: 'tiny', imageSize: 48, images: keys.length, embeddingsPerSecond: keys.length / embedSeconds },
  }, null, 2)}\n`);
}

void main();
