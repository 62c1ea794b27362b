import { strict as assert } from 'node:assert';
import { compileTrainOptions, loadImages, samplePK, splitByIdentity } from '@facenet/core';
import { DatasetSpec, ShardJobData, sourceFromSpec } from '@facenet/protocol';
import { StepCollective, StepCompute, StepRunner } from '@facenet/worker';

/** A compute thread that records the images each step trains on; weights are a step counter. */
class RecordingCompute implements StepCompute {
  step = 0;
  readonly trained: Float32Array[][] = [];
  async init(b: { step: number }) {
    this.step = b.step;
    return { step: b.step, bnOffset: 0 };
  }
  async gradients(b: { shards: { images: Float32Array }[] }) {
    this.trained.push(b.shards.map((s) => s.images.slice()));
    return new Float32Array(8);
  }
  async apply(b: { step: number }) {
    this.step = b.step + 1;
    return { step: this.step };
  }
  async checkpoint(dir: string) {
    return dir;
  }
  async state() {
    return null;
  }
}

const oneRank: StepCollective = { allreduce: async () => ({ bytes: 0, algorithm: 'ring' as const }) };

describe('step runner: prefetched images', () => {
  const dataset: DatasetSpec = { kind: 'synthetic', identities: 12, imagesPerIdentity: 6, seed: 7 };
  const train = compileTrainOptions({ model: { architecture: 'tiny', imageSize: 24 }, batch: { P: 4, K: 3 }, virtualShards: 2, seed: 1 });
  const source = sourceFromSpec(dataset);
  const shardsOf = (seed: number, step: number) => [splitByIdentity(samplePK(source.index, train.batch, seed, step), 2).flat()];
  const job = (step: number, shards: ShardJobData['shards'], prefetch?: ShardJobData['prefetch']): ShardJobData => ({
    jobId: 'j',
    step,
    rank: 0,
    generation: 1,
    ring: { size: 1, predecessor: 'self:1' },
    shards,
    prefetch,
    dataset,
    train,
    restoreFrom: null,
    trustHeld: false,
    checksum: false,
    learningRateScale: 1,
    collectiveSecret: 's',
  });

  it('trains the step on its own items when they changed after the prefetch (a new mining plan)', async () => {
    const compute = new RecordingCompute();
    const runner = new StepRunner(compute, oneRank);
    const planned = shardsOf(1, 1); // what step 1 looked like when step 0 prefetched it
    const replanned = shardsOf(99, 1); // step 1 under the plan in force when it runs
    assert.notDeepEqual(planned, replanned);
    await runner.run(job(0, shardsOf(1, 0), { step: 1, shards: planned }));
    await runner.run(job(1, replanned));
    const expected = await loadImages(source, replanned[0]!, {
      size: 24,
      augment: { ...(train.augment as object), seed: train.seed, step: 1 } as never,
    });
    assert.deepEqual(compute.trained[1]![0], expected.data, 'step 1 trained on the prefetched (stale) images');
  });

  it('uses the prefetch when the items are the same', async () => {
    const compute = new RecordingCompute();
    const runner = new StepRunner(compute, oneRank);
    const next = shardsOf(1, 1);
    await runner.run(job(0, shardsOf(1, 0), { step: 1, shards: next }));
    await runner.run(job(1, next));
    const expected = await loadImages(source, next[0]!, {
      size: 24,
      augment: { ...(train.augment as object), seed: train.seed, step: 1 } as never,
    });
    assert.deepEqual(compute.trained[1]![0], expected.data);
  });

  it('with prefetch off (FACENET_WORKER_PREFETCH=0) decodes nothing ahead and trains on the same images', async () => {
    const compute = new RecordingCompute();
    const runner = new StepRunner(compute, oneRank, {}, { prefetch: false });
    const next = shardsOf(1, 1);
    await runner.run(job(0, shardsOf(1, 0), { step: 1, shards: next }));
    assert.equal((runner as unknown as { prefetched: unknown }).prefetched, undefined, 'no decode started for step 1');
    await runner.run(job(1, next));
    const expected = await loadImages(source, next[0]!, {
      size: 24,
      augment: { ...(train.augment as object), seed: train.seed, step: 1 } as never,
    });
    assert.deepEqual(compute.trained[1]![0], expected.data);
  });
});
