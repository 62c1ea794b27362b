import { strict as assert } from 'node:assert';
import { compileTrainOptions } from '@facenet/core';
import { ComputeClient } from '@facenet/worker';

/** The worker's compute thread on its own (a real worker thread): what it holds across steps. */
describe('compute thread', function () {
  this.timeout(60000);
  const train = compileTrainOptions({ model: { architecture: 'tiny', imageSize: 24 }, batch: { P: 4, K: 2 }, virtualShards: 2, seed: 2 });
  const shard = (seed: number) => ({
    images: Float32Array.from({ length: 4 * 24 * 24 * 3 }, (_, i) => Math.sin(i * seed)),
    labels: Int32Array.from([0, 0, 1, 1]),
    count: 4,
  });

  it('holds a flat number of tensors across steps, a failing one included', async () => {
    const compute = new ComputeClient();
    try {
      await compute.init({ jobId: 'j', step: 0, train, restoreFrom: null, preprocessing: { cropFraction: 1 } });
      const counts: number[] = [];
      for (let step = 0; step < 4; step++) {
        const flat = await compute.gradients({ shards: [shard(step + 1), shard(step + 2)] });
        await compute.apply({ flat, step, learningRateScale: 1, checksum: step === 3 });
        counts.push(await compute.tensors());
      }
      // Adam's slots appear with the first update; from then on the count must not move.
      assert.deepEqual(counts.slice(1), [counts[1], counts[1], counts[1]]);
      // A shard whose images do not match its count throws inside the second shard's forward.
      const bad = { ...shard(9), count: 5 };
      await assert.rejects(compute.gradients({ shards: [shard(5), bad] }));
      assert.equal(await compute.tensors(), counts[1], "the first shard's gradients leaked");
      // A NaN vector, and an update that would overflow the weights, are refused and leak nothing.
      const nan = await compute.gradients({ shards: [shard(6)] });
      nan.fill(NaN);
      await assert.rejects(compute.apply({ flat: nan, step: 4, learningRateScale: 1, checksum: false }), /non-finite gradients at step 5/);
      const huge = await compute.gradients({ shards: [shard(6)] });
      await assert.rejects(
        compute.apply({ flat: huge, step: 4, learningRateScale: 1e45, checksum: false }),
        /non-finite weights at step 5/,
      );
      assert.equal(await compute.tensors(), counts[1]);
      // Nothing was applied: the next good update is still step 4's.
      const ok = await compute.gradients({ shards: [shard(7)] });
      assert.equal((await compute.apply({ flat: ok, step: 4, learningRateScale: 1, checksum: false })).step, 5);
    } finally {
      await compute.close();
    }
  });
});
