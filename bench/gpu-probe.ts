/**
 * What a GPU does for this project, measured where it runs: the adapter, matmul and conv GFLOP/s,
 * training img/s (forward, semi-hard triplets, backward, guarded Adam update) of tiny and
 * inception-small at each image size, and embedding img/s; one JSON line each. With --torch, the
 * same nets in PyTorch (bench/torch/zoo_nets.py, --torch-device cuda) are measured in the same run,
 * interleaved, so both columns come from one GPU at one time.
 *
 *   npx tsx bench/gpu-probe.ts [--backend webgpu] [--models tiny,inception-small] [--sizes 64,96,160]
 *     [--batch 40] [--steps 5] [--matmul 2048] [--torch /usr/bin/python3] [--torch-device cuda]
 *
 * `npm run bundle:gpu-probe` packs it into one folder that runs with a bare `node` binary
 * (scripts/bundle-gpu-probe.sh; its README says how). Imports reach into the sources on purpose:
 * the probe needs the model and the step, not the image decoders (sharp) or object stores.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { selectBackend } from '../packages/facenet/src/backend/select-backend';
import { tf } from '../packages/facenet/src/backend/tf';
import { ArchitectureName } from '../packages/facenet/src/model/zoo';
import { EmbeddingModel } from '../packages/facenet/src/model/embedding-model';
import { Optimizer } from '../packages/facenet/src/optim/optimizer';
import { applyUpdateGuarded } from '../packages/facenet/src/train/guarded-update';
import { disposeGradients, shardGradients } from '../packages/facenet/src/train/shard-gradients';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'webgpu' },
    models: { type: 'string', default: 'tiny,inception-small' },
    sizes: { type: 'string', default: '64,96,160' },
    batch: { type: 'string', default: '40' },
    steps: { type: 'string', default: '5' },
    matmul: { type: 'string', default: '2048' },
    torch: { type: 'string' },
    'torch-device': { type: 'string', default: 'cuda' },
    'torch-script': { type: 'string', default: join(__dirname, 'torch', 'zoo_nets.py') },
  },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const round = (x: number, digits = 1) => Number(x.toFixed(digits));
const print = (o: object) => console.log(JSON.stringify(o));

/** Seconds of `fn`, whose result is read back (a GPU runs asynchronously until then); median of `reps` after one warm-up. */
async function timed(reps: number, fn: () => tf.Tensor | Promise<void>): Promise<number> {
  const once = async () => {
    const t0 = performance.now();
    const out = await fn();
    if (out) {
      await out.data();
      out.dispose();
    }
    return (performance.now() - t0) / 1000;
  };
  await once();
  const seconds: number[] = [];
  for (let i = 0; i < reps; i++) seconds.push(await once());
  return median(seconds);
}

async function kernels(): Promise<void> {
  const n = Number(values.matmul);
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const mm = await timed(5, () => tf.matMul(a, b));
  print({ probe: 'matmul', n, gflops: round((2 * n ** 3) / mm / 1e9) });
  a.dispose();
  b.dispose();
  // A mid-network convolution of a 96 px inception-small batch: 40 x 24 x 24 x 96 -> 192, 3 x 3.
  const x = tf.randomNormal([40, 24, 24, 96]);
  const f = tf.randomNormal([3, 3, 96, 192]);
  const conv = await timed(5, () => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'));
  print({ probe: 'conv2d', shape: '40x24x24x96 * 3x3x96x192', gflops: round((2 * 40 * 24 * 24 * 192 * 9 * 96) / conv / 1e9) });
  x.dispose();
  f.dispose();
}

/** PyTorch's side, a child answering JSON lines (bench/torch/zoo_nets.py). */
function torchSide(python: string) {
  const child = spawn(python, [values['torch-script']!], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    async ask(cmd: object): Promise<Record<string, unknown>> {
      child.stdin!.write(`${JSON.stringify(cmd)}\n`);
      const { value } = await lines.next();
      if (typeof value !== 'string') throw new Error('the torch side exited');
      return JSON.parse(value) as Record<string, unknown>;
    },
    close: () => child.kill(),
  };
}

async function nets(torch: ReturnType<typeof torchSide> | undefined): Promise<void> {
  const batch = Number(values.batch);
  const steps = Number(values.steps);
  for (const architecture of values.models!.split(',') as ArchitectureName[]) {
    for (const size of values.sizes!.split(',').map(Number)) {
      const images = Float32Array.from({ length: batch * size * size * 3 }, () => Math.random() * 2 - 1);
      const labels = Int32Array.from({ length: batch }, (_, i) => Math.floor(i / 10));
      const model = new EmbeddingModel({ architecture, imageSize: size });
      const optimizer = new Optimizer({ name: 'adam', learningRate: 1e-3 });
      let step = 0;
      const train = await timed(steps, async () => {
        const g = await shardGradients(model, { images, labels, count: batch }, 'semi-hard', 0.2);
        try {
          await applyUpdateGuarded(model, optimizer, g, 1, 1e-3, 0.99, step++);
        } finally {
          disposeGradients(g);
        }
      });
      const input = tf.tensor4d(images, [batch, size, size, 3]);
      const embed = await timed(steps, () => model.embed(input));
      input.dispose();
      model.dispose();
      optimizer.dispose();
      const row: Record<string, unknown> = {
        probe: 'net',
        architecture,
        size,
        batch,
        trainImagesPerSecond: round(batch / train),
        embedImagesPerSecond: round(batch / embed),
      };
      if (torch) {
        const setup = await torch.ask({ op: 'setup', model: architecture, size, batch, device: values['torch-device'] });
        const t = (await torch.ask({ op: 'train', steps: steps + 1 })).seconds as number[];
        const e = (await torch.ask({ op: 'embed', reps: steps + 1 })).seconds as number[];
        Object.assign(row, {
          torchTrainImagesPerSecond: round(batch / median(t.slice(1))),
          torchEmbedImagesPerSecond: round(batch / median(e.slice(1))),
          torch: setup.torch,
          torchDevice: setup.gpu ?? setup.device,
        });
      }
      print(row);
    }
  }
}

async function main(): Promise<void> {
  const choice = await selectBackend({ backend: values.backend, log: null });
  print({ probe: 'backend', name: choice.name, adapter: choice.adapter ?? null, node: process.version, tfjs: tf.version.tfjs });
  await kernels();
  const torch = values.torch ? torchSide(values.torch) : undefined;
  try {
    await nets(torch);
  } finally {
    torch?.close();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
