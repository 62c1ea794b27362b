import { strict as assert } from 'node:assert';
import { planBatch } from '@facenet/coordinator';
import { compileTrainOptions, SyntheticSource } from '@facenet/core';
import { curriculumSchema, MiningPlan } from '@facenet/protocol';

const source = new SyntheticSource({ identities: 30, imagesPerIdentity: 6 });
const config = compileTrainOptions({ batch: { P: 10, K: 4 }, virtualShards: 4, seed: 4 });
const plan = {
  jobId: 'j',
  version: 3,
  step: 10,
  checkpoint: '',
  createdAt: '',
  hardness: 0.5,
  floor: true,
  pairs: [
    [1, 2, 9],
    [3, 4, 7],
    [5, 6, 5],
    [7, 8, 2],
  ],
  confusable: { 11: [12], 13: [14] },
  sample: [],
  skippedSteps: [],
  stats: {} as MiningPlan['stats'],
  timings: { embedMs: 0, mineMs: 0, images: 0 },
} as MiningPlan;

describe('batch planner', () => {
  it('splits a uniform batch by whole identities, and rank shards do not depend on W', () => {
    const w1 = planBatch(source, config, 5, 1);
    const w2 = planBatch(source, config, 5, 2);
    assert.equal(w1[0]!.length, 4);
    assert.deepEqual([w2[0]![0], w2[1]![0], w2[0]![1], w2[1]![1]], w1[0]);
    assert.deepEqual(planBatch(source, config, 5, 2), w2, 'deterministic in (seed, step)');
  });

  it('with a curriculum, puts each mined pair of identities in one shard and fills the rest uniformly', () => {
    const curriculum = curriculumSchema.parse({ enabled: true, rampSteps: 0, finalFraction: 0.6 });
    const [shards] = planBatch(source, config, 20, 1, curriculum, plan);
    const ids = shards!.map((s) => new Set(s.map((i) => i.identity)));
    const all = new Set(shards!.flatMap((s) => s.map((i) => i.identity)));
    assert.equal(all.size, 10, 'P identities');
    const together = (a: number, b: number) => ids.some((s) => s.has(a) && s.has(b));
    // 0.6 x 10 = 6 mined identities: the three most frequent mined pairs fit.
    const placed = [
      [1, 2],
      [3, 4],
      [5, 6],
      [7, 8],
    ].filter(([a, b]) => all.has(a!) && all.has(b!));
    assert.equal(placed.length, 3);
    for (const [a, b] of placed) assert.ok(together(a!, b!), `${a} and ${b} share a shard`);
    assert.ok(shards!.every((s) => s.length > 0));
    assert.deepEqual(planBatch(source, config, 20, 1, curriculum, plan), [shards], 'deterministic in (seed, step, plan version)');
    assert.notDeepEqual(planBatch(source, config, 20, 1, curriculum, { ...plan, version: 4 }), [shards]);
  });

  it('without a plan or before the curriculum starts, plans uniformly', () => {
    const curriculum = curriculumSchema.parse({ enabled: true, startStep: 100 });
    assert.deepEqual(planBatch(source, config, 20, 1, curriculum, plan), planBatch(source, config, 20, 1));
    assert.deepEqual(
      planBatch(source, config, 20, 1, curriculumSchema.parse({ enabled: true }), undefined),
      planBatch(source, config, 20, 1),
    );
  });
});
