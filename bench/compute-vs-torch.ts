/**
 * The project's training step and embedding against the same network in PyTorch, on the same
 * CPU, interleaved round by round in one run, with the project's per-kernel profile.
 *
 *   npx tsx bench/compute-vs-torch.ts [--models inception-small,tiny] [--size 64] [--batch 90]
 *     [--rounds 5] [--steps 2] [--backend wasm] [--kernels project|stock] [--top 15]
 *
 * PyTorch is Debian's python3-torch (/usr/bin/python3, one thread, as the project's wasm
 * backend), running bench/torch/zoo_nets.py: the zoo's nets rebuilt layer for layer (the
 * parameter counts are printed side by side), forward + semi-hard triplet loss + backward +
 * Adam. Without it the torch columns are skipped with a message. Both sides take the same batch
 * of random images, 10 per identity. Each round runs `steps` project steps, then `steps` torch
 * steps, then three embeddings each; the figures are medians over rounds (first round dropped
 * as warm-up). The embedding is also timed through ONNX Runtime (the project's inference engine:
 * the exported graph on onnxruntime-node, one thread, as the torch side), the column
 * `onnxruntime`. `--kernels stock` switches the project's own kernels off (tfjs's gradients; the
 * conv gradients need the cpu backend then). Prints one JSON document.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'inception-small,tiny' },
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '90' },
    rounds: { type: 'string', default: '5' },
    steps: { type: 'string', default: '2' },
    backend: { type: 'string', default: 'wasm' },
    kernels: { type: 'string', default: 'project' },
    top: { type: 'string', default: '15' },
    python: { type: 'string', default: '/usr/bin/python3' },
  },
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const round1 = (x: number) => Math.round(x * 10) / 10;

/** The PyTorch side: a child process answering one JSON line per command. */
class Torch {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly child: ReturnType<typeof spawn>) {
    this.lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  }
  static available(python: string): string | undefined {
    const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
    return r.status === 0
      ? undefined
      : `PyTorch not importable by ${python} (apt-get install python3-torch): ${(r.stderr || String(r.error)).trim().split('\n').pop()}`;
  }
  static start(python: string): Torch {
    return new Torch(spawn(python, [join(__dirname, 'torch', 'zoo_nets.py')], { stdio: ['pipe', 'pipe', 'inherit'] }));
  }
  async ask<T>(cmd: object): Promise<T> {
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    const { value, done } = await this.lines.next();
    if (done) throw new Error('the PyTorch process ended');
    const reply = JSON.parse(value as string) as T & { error?: string };
    if (reply.error) throw new Error(reply.error);
    return reply;
  }
  stop(): void {
    this.child.stdin!.end();
  }
}

async function main(): Promise<void> {
  if (values.kernels === 'stock') process.env.FACENET_STOCK_KERNELS = '1';
  const core = await import('@facenet/core');
  await core.selectBackend({ backend: values.backend, log: null });
  const { tf } = core;
  const size = Number(values.size);
  const n = Number(values.batch);
  const steps = Number(values.steps);
  const rounds = Number(values.rounds);
  const torchMissing = Torch.available(values.python);
  if (torchMissing) process.stderr.write(`[compute-vs-torch] skipping the PyTorch side: ${torchMissing}\n`);
  const torch = torchMissing ? undefined : Torch.start(values.python);
  const load: number[] = [loadavg()[0] as number];
  const results = [];
  try {
    for (const model of values.models.split(',')) {
      const m = new core.EmbeddingModel({ architecture: model as never, imageSize: size });
      const images = new Float32Array(n * size * size * 3).map(() => Math.random() * 2 - 1);
      const labels = Int32Array.from({ length: n }, (_, i) => Math.floor(i / 10));
      const opt = new core.Optimizer({ name: 'adam', learningRate: 1e-3 });
      const step = () => {
        const g = core.computeShardGradients(m, { images, labels, count: n }, 'semi-hard', 0.2);
        core.applyUpdate(m, opt, g, 1, 1e-3, 0.9);
        core.disposeGradients(g);
      };
      const x = tf.tensor4d(images, [n, size, size, 3]);
      const embed = () => {
        const e = m.embed(x, n);
        e.dataSync();
        e.dispose();
      };
      const timed = (f: () => void) => {
        const t0 = performance.now();
        f();
        return (performance.now() - t0) / 1000;
      };
      const ort = await core.createEmbedder(m, { engine: 'onnxruntime', threads: 1 });
      const ortEmbed = async () => {
        const t0 = performance.now();
        await ort.embed(images.slice(), n);
        return (performance.now() - t0) / 1000;
      };
      const setup = torch
        ? await torch.ask<{ parameters: number; torch: string; threads: number }>({ op: 'setup', model, size, batch: n, threads: 1 })
        : undefined;
      const ours = { train: [] as number[], embed: [] as number[], ortEmbed: [] as number[] };
      const theirs = { train: [] as number[], embed: [] as number[] };
      for (let r = 0; r <= rounds; r++) {
        const keep = r > 0; // round 0 warms both up
        for (let s = 0; s < steps; s++) {
          const t = timed(step);
          if (keep) ours.train.push(t);
        }
        if (torch) {
          const t = await torch.ask<{ seconds: number[] }>({ op: 'train', steps });
          if (keep) theirs.train.push(...t.seconds);
        }
        for (let s = 0; s < 3; s++) {
          const t = timed(embed);
          if (keep) ours.embed.push(t);
          const o = await ortEmbed();
          if (keep) ours.ortEmbed.push(o);
        }
        if (torch) {
          const t = await torch.ask<{ seconds: number[] }>({ op: 'embed', reps: 3 });
          if (keep) theirs.embed.push(...t.seconds);
        }
        load.push(loadavg()[0] as number);
      }
      const profile = await tf.profile(step);
      const byName = new Map<string, { ms: number; calls: number }>();
      for (const k of profile.kernels) {
        const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
        e.ms += Number(k.kernelTimeMs) || 0;
        e.calls += 1;
        byName.set(k.name, e);
      }
      const kernelMs = [...byName.values()].reduce((a, e) => a + e.ms, 0);
      const rate = (xs: number[]) => (xs.length ? round1(n / median(xs)) : undefined);
      const ourTrain = rate(ours.train)!;
      const ourEmbed = rate(ours.embed)!;
      const torchTrain = rate(theirs.train);
      const torchEmbed = rate(theirs.embed);
      const ortEmbedRate = rate(ours.ortEmbed)!;
      results.push({
        model,
        parameters: { project: m.parameterCount, torch: setup?.parameters },
        trainImagesPerSecond: {
          project: ourTrain,
          torch: torchTrain,
          ratio: torchTrain ? Math.round((ourTrain / torchTrain) * 100) / 100 : undefined,
        },
        embedImagesPerSecond: {
          project: ourEmbed,
          torch: torchEmbed,
          ratio: torchEmbed ? Math.round((ourEmbed / torchEmbed) * 100) / 100 : undefined,
          onnxruntime: ortEmbedRate,
          onnxruntimeOverTorch: torchEmbed ? Math.round((ortEmbedRate / torchEmbed) * 100) / 100 : undefined,
          onnxruntimeOverProject: Math.round((ortEmbedRate / ourEmbed) * 100) / 100,
        },
        stepMs: {
          project: Math.round(median(ours.train) * 1000),
          torch: theirs.train.length ? Math.round(median(theirs.train) * 1000) : undefined,
        },
        profile: {
          kernelMs: Math.round(kernelMs),
          top: [...byName.entries()]
            .sort((a, b) => b[1].ms - a[1].ms)
            .slice(0, Number(values.top))
            .map(([name, e]) => ({ name, ms: round1(e.ms), calls: e.calls })),
        },
      });
      x.dispose();
      await ort.dispose();
      m.dispose();
      process.stderr.write(
        `${JSON.stringify(results[results.length - 1]?.trainImagesPerSecond)} ${JSON.stringify(results[results.length - 1]?.embedImagesPerSecond)}\n`,
      );
    }
  } finally {
    torch?.stop();
  }
  process.stdout.write(
    `${JSON.stringify(
      {
        benchmark: 'compute-vs-torch',
        backend: values.backend,
        kernels: values.kernels,
        imageSize: size,
        batch: n,
        rounds,
        stepsPerRound: steps,
        loadAverage1m: { min: round1(Math.min(...load)), max: round1(Math.max(...load)) },
        note: 'JS work inside a gradient (max-pool, concat) is not a kernel: it shows in step time, not in the profile',
        results,
      },
      null,
      2,
    )}\n`,
  );
}

void main();
