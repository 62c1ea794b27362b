/**
 * Per-kernel profile of one training step (forward, triplet loss, backward, update) on one
 * backend: which kernels the step's time goes to.
 *
 *   npx tsx bench/step-profile.ts [--model inception-small] [--size 64] [--batch 90] [--backend wasm] [--top 25]
 *
 * Prints JSON: the step's wall time, the kernels' summed time, and the top kernels by time.
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'inception-small' },
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '90' },
    backend: { type: 'string', default: 'wasm' },
    top: { type: 'string', default: '25' },
  },
});

async function main(): Promise<void> {
  const core = await import('@facenet/core');
  await core.selectBackend({ backend: values.backend, log: null });
  const { tf } = core;
  const size = Number(values.size);
  const n = Number(values.batch);
  const m = new core.EmbeddingModel({ architecture: values.model as never, imageSize: size });
  const images = new Float32Array(n * size * size * 3).map(() => Math.random() * 2 - 1);
  const labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / 10));
  const opt = new core.Optimizer({ name: 'adagrad' });
  const step = () => {
    const g = core.computeShardGradients(m, { images, labels, count: n }, 'semi-hard', 0.2);
    core.applyUpdate(m, opt, g, 1, 0.05, 0.9);
    core.disposeGradients(g);
  };
  step();
  step();
  const t0 = performance.now();
  const info = await tf.profile(step);
  const wall = performance.now() - t0;
  const byName = new Map<string, { ms: number; calls: number }>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = Number(k.kernelTimeMs) || 0;
    total += ms;
    const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls += 1;
    byName.set(k.name, e);
  }
  const top = [...byName.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, Number(values.top))
    .map(([name, e]) => ({ name, ms: Math.round(e.ms * 10) / 10, calls: e.calls }));
  process.stdout.write(
    `${JSON.stringify({ benchmark: 'step-profile', model: values.model, imageSize: size, batch: n, backend: values.backend, profiledWallMs: Math.round(wall), kernelMs: Math.round(total), top }, null, 2)}\n`,
  );
}

void main();
