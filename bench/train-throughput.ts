/**
 * Training and embedding throughput (images/s) per backend, model and input size, with the
 * stock tfjs conv gradients beside ours where stock runs at all. Each configuration runs in its
 * own child process (a backend and the gradient registration are per process) with a time cap.
 *
 *   npx tsx bench/train-throughput.ts [--models tiny,resnet-small,inception-small] [--sizes 64,96]
 *     [--backends wasm,cpu] [--batch 90] [--steps 3] [--cap-seconds 240] [--gradients project,stock,stock-matmul]
 *
 * Prints one JSON document: per configuration the median of `steps` timed steps after one
 * warm-up step. A run cut by the cap reports the images it finished as a lower bound.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';

const run = promisify(execFile);
const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'tiny,resnet-small,inception-small' },
    sizes: { type: 'string', default: '64,96' },
    backends: { type: 'string', default: 'wasm,cpu' },
    batch: { type: 'string', default: '90' },
    steps: { type: 'string', default: '3' },
    'cap-seconds': { type: 'string', default: '240' },
    /** project: all our gradients; stock: tfjs's conv gradients; stock-matmul: tfjs's matMul gradient, ours for conv. */
    gradients: { type: 'string', default: 'project,stock' },
    child: { type: 'string' },
  },
});

interface Result {
  backend: string;
  model: string;
  imageSize: number;
  gradients: 'project' | 'stock' | 'stock-matmul';
  parameters?: number;
  trainImagesPerSecond?: number;
  embedImagesPerSecond?: number;
  error?: string;
  stepSeconds?: number[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** One configuration, in this process. */
async function child(spec: string): Promise<void> {
  const [backend, model, size, gradients, batch, steps] = spec.split(':') as [string, string, string, string, string, string];
  if (gradients === 'stock') process.env.FACENET_STOCK_CONV_GRADIENTS = '1';
  if (gradients === 'stock-matmul') process.env.FACENET_STOCK_MATMUL_GRADIENT = '1';
  const core = await import('@facenet/core');
  await core.selectBackend({ backend, log: null });
  const { tf } = core;
  const m = new core.EmbeddingModel({ architecture: model as never, imageSize: Number(size) });
  const n = Number(batch);
  const images = new Float32Array(n * Number(size) ** 2 * 3).map(() => Math.random() * 2 - 1);
  const labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / 10)); // 10 faces per identity
  const opt = new core.Optimizer({ name: 'adagrad' });
  const out: Result = { backend, model, imageSize: Number(size), gradients: gradients as 'project', parameters: m.parameterCount };
  const step = () => {
    const g = core.computeShardGradients(m, { images, labels, count: n }, 'semi-hard', 0.2);
    core.applyUpdate(m, opt, g, 1, 0.05, 0.9);
    core.disposeGradients(g);
  };
  try {
    step(); // warm-up: kernel setup and optimizer slots
    const times: number[] = [];
    for (let i = 0; i < Number(steps); i++) {
      const t0 = performance.now();
      step();
      times.push((performance.now() - t0) / 1000);
    }
    out.stepSeconds = times;
    out.trainImagesPerSecond = n / median(times);
    const x = tf.tensor4d(images, [n, Number(size), Number(size), 3]);
    const et: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      const e = m.embed(x, n);
      await e.data();
      e.dispose();
      et.push((performance.now() - t0) / 1000);
    }
    out.embedImagesPerSecond = n / median(et);
  } catch (err) {
    out.error = (err as Error).message.split('\n')[0];
  }
  process.stdout.write(JSON.stringify(out));
}

async function main(): Promise<void> {
  if (values.child) return child(values.child);
  const results: Result[] = [];
  for (const backend of values.backends.split(',')) {
    for (const model of values.models.split(',')) {
      for (const size of values.sizes.split(',')) {
        for (const gradients of values.gradients.split(',')) {
          const spec = [backend, model, size, gradients, values.batch, values.steps].join(':');
          try {
            const r = await run(process.execPath, ['--import', 'tsx', __filename, '--child', spec], {
              timeout: Number(values['cap-seconds']) * 1000,
              maxBuffer: 1 << 20,
            });
            results.push(JSON.parse(r.stdout) as Result);
          } catch (err) {
            const e = err as { killed?: boolean; stderr?: string };
            results.push({
              backend,
              model,
              imageSize: Number(size),
              gradients: gradients as 'project',
              error: e.killed ? `exceeded ${values['cap-seconds']} s cap` : (e.stderr ?? String(err)).split('\n')[0],
            });
          }
          process.stderr.write(`${JSON.stringify(results[results.length - 1])}\n`);
        }
      }
    }
  }
  process.stdout.write(
    `${JSON.stringify({ benchmark: 'train-throughput', batch: Number(values.batch), steps: Number(values.steps), results }, null, 2)}\n`,
  );
}

void main();
