import { strict as assert } from 'node:assert';
import {
  ARCHITECTURES,
  compileTrainOptions,
  computeShardGradients,
  disposeGradients,
  EmbeddingModel,
  modelFootprint,
  Optimizer,
  rankLoad,
  selectBackend,
  stepFootprint,
  tf,
} from '@facenet/core';
import { budgetShortfall, parseJobSpec } from '@facenet/protocol';

/**
 * The step footprint decides which specs admission refuses: held to the real model here, so a
 * changed architecture cannot quietly make it wrong.
 */
describe('step footprint', function () {
  this.timeout(120_000);
  before(() => selectBackend({ log: null }));

  for (const architecture of ARCHITECTURES) {
    for (const [width, imageSize] of [
      [1, 48],
      [1.5, 64],
    ] as const) {
      it(`${architecture} width ${width} ${imageSize} px: parameters within 3%, forward activations and FLOPs at most 10% under the real model (and not far over)`, async () => {
        const model = new EmbeddingModel({ architecture, width, imageSize, embeddingDim: 64 });
        try {
          const f = modelFootprint(model.config);
          assert.ok(Math.abs(f.parameters / model.parameterCount - 1) < 0.03, `parameters ${f.parameters} vs ${model.parameterCount}`);
          let activations = 0;
          let flops = 0;
          const profile = await tf.profile(() =>
            tf.tidy(() => void model.forward(tf.zeros([1, imageSize, imageSize, 3]), true, new Map())),
          );
          for (const k of profile.kernels) {
            for (const s of k.outputShapes) activations += (s as number[]).reduce((a, b) => a * b, 1);
            const out = k.outputShapes[0] as number[];
            const filter = k.inputShapes[1] as number[];
            if (k.name === 'Conv2D')
              flops += 2 * out.reduce((a, b) => a * b, 1) * (filter[0] as number) * (filter[1] as number) * (filter[2] as number);
          }
          // Width above 1 scales estimates up (never below the real model); see footprint.ts.
          assert.ok(
            f.activationsPerImage >= activations * 0.9 && f.activationsPerImage <= activations * 1.6,
            `activations ${f.activationsPerImage} vs ${activations}`,
          );
          assert.ok(f.flopsPerImage >= flops * 0.9 && f.flopsPerImage <= flops * 1.3, `FLOPs ${f.flopsPerImage} vs ${flops}`);
        } finally {
          model.dispose();
        }
      });
    }
  }

  it("holds a real training shard's peak memory (forward, triplet loss, backward) below the estimate, within 4x", async () => {
    const train = compileTrainOptions({
      model: { architecture: 'inception-small', imageSize: 64 },
      batch: { P: 8, K: 4 },
      virtualShards: 1,
    });
    const model = new EmbeddingModel(train.model);
    const optimizer = new Optimizer(train.optimizer);
    try {
      const n = 32;
      const shard = {
        images: Float32Array.from({ length: n * 64 * 64 * 3 }, (_, i) => Math.sin(i)),
        labels: Int32Array.from({ length: n }, (_, i) => i % 8),
        count: n,
      };
      const before = tf.memory().numBytes;
      const profile = await tf.profile(() => {
        disposeGradients(computeShardGradients(model, shard, train.selection, train.margin));
      });
      const measured = profile.peakBytes - before;
      const estimate = stepFootprint(train, rankLoad(train, 1));
      // The estimate also counts the images (twice, with the prefetch) and parameter copies the
      // profile does not see; the shard's own peak must fit under it.
      if (process.env.FACENET_TEST_VERBOSE) console.log({ estimate: estimate.memoryBytes, measured });
      assert.ok(estimate.memoryBytes > measured, `estimate ${estimate.memoryBytes} below the measured peak ${measured}`);
      assert.ok(estimate.memoryBytes < measured * 4, `estimate ${estimate.memoryBytes} over 4x the measured peak ${measured}`);
    } finally {
      model.dispose();
      optimizer.dispose();
    }
  });

  for (const architecture of ARCHITECTURES) {
    it(`${architecture}: the largest single tensor of a training step (one GPU buffer) is estimated at or above the real one, within 4x`, async () => {
      for (const [width, size] of [
        [0.5, 64],
        [1, 64],
        [1, 32],
        [1.5, 48],
      ] as const) {
        const n = 10;
        const model = new EmbeddingModel({ architecture, width, imageSize: size, embeddingDim: 64 });
        try {
          // The backward pass makes tensors of its inputs' and weights' shapes, so the forward
          // pass's outputs and the variables bound a step's largest tensor (as tfjs's stock
          // kernels, which webgpu runs, make them; the project's wasm/cpu gradients pad inputs).
          let largest = 0;
          const profile = await tf.profile(() => tf.tidy(() => void model.forward(tf.zeros([n, size, size, 3]), true, new Map())));
          for (const k of profile.kernels)
            for (const shape of k.outputShapes) largest = Math.max(largest, 4 * (shape ?? []).reduce((a, b) => a * b, 1));
          for (const v of model.store.trainable.values()) largest = Math.max(largest, 4 * v.size);
          const train = compileTrainOptions({ model: { architecture, width, imageSize: size, embeddingDim: 64 } });
          const estimate = stepFootprint(train, { imagesOnRank: n, imagesPerShard: n }).largestTensorBytes;
          assert.ok(estimate >= largest, `width ${width} ${size} px: estimate ${estimate} under the real largest tensor ${largest}`);
          assert.ok(estimate <= 4 * largest, `width ${width} ${size} px: estimate ${estimate} over 4x the real ${largest}`);
        } finally {
          model.dispose();
        }
      }
    });
  }

  it('refuses a step whose largest tensor exceeds what a GPU worker binds as one buffer, naming the limit', () => {
    const train = compileTrainOptions({
      model: { architecture: 'inception-small', imageSize: 160 },
      batch: { P: 40, K: 10 },
      virtualShards: 1,
    });
    const gpu = { memoryBytes: 2 ** 40, gflops: 5000, maxBufferBytes: 128 * 2 ** 20 };
    assert.match(
      budgetShortfall(train, 1, gpu) ?? '',
      /tensor of ~0\.\d+ GiB in one shard; the GPU binds at most 0\.13 GiB as one buffer \(maxStorageBufferBindingSize\)/,
    );
    const split = compileTrainOptions({
      model: { architecture: 'inception-small', imageSize: 160 },
      batch: { P: 40, K: 10 },
      virtualShards: 8,
    });
    assert.equal(budgetShortfall(split, 1, gpu), undefined, 'more virtual shards: smaller tensors, the step fits');
  });

  it('refuses the spec that hung every worker (100,000 x 20 faces of 512 px, embeddingDim 65536), naming what it needs', () => {
    const spec = parseJobSpec({
      dataset: { kind: 'synthetic', identities: 100_000, imagesPerIdentity: 20 },
      train: { model: { architecture: 'tiny', imageSize: 512, embeddingDim: 65536 }, batch: { P: 10_000, K: 20 }, steps: 1e7 },
    });
    const train = compileTrainOptions({ ...spec.train, checkpointDir: undefined } as never);
    const why = budgetShortfall(train, 1, { memoryBytes: 16 * 2 ** 30, gflops: 5 }, 600_000);
    assert.match(why ?? '', /200000 images of 512 px.*needs ~\d+.*GiB; the largest worker budget is 16\.0 GiB/);
    // The demo's job fits a small worker, in memory and in time.
    const demo = compileTrainOptions({ model: { architecture: 'tiny' }, batch: { P: 8, K: 4 }, virtualShards: 2 });
    assert.equal(budgetShortfall(demo, 2, { memoryBytes: 2 ** 30, gflops: 5 }, 600_000), undefined);
    // A step that fits in memory but cannot finish before the step timeout is refused for time.
    const slow = compileTrainOptions({ model: { architecture: 'resnet-small', imageSize: 256, width: 2 }, batch: { P: 200, K: 10 } });
    assert.match(
      budgetShortfall(slow, 1, { memoryBytes: 2 ** 50, gflops: 5 }, 600_000) ?? '',
      /takes ~\d+ s at 5 GFLOP\/s; steps time out after 600 s/,
    );
  });
});
