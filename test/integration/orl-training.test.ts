import { strict as assert } from 'node:assert';
import { FolderSource, holdoutPairs, scorePairs, embedImages, splitHoldout, SubsetSource, Trainer } from '@facenet/core';
import { ORL, REAL_ORL, useBackend } from '../helpers';

/**
 * The real-data check: the tiny net trained briefly on 30 ORL people must verify the 10
 * people it never saw clearly better than the same net untrained.
 */
describe('training on real faces (ORL, 30 people train, 10 held out)', function () {
  this.timeout(240000);
  before(useBackend);

  it('raises VAL@FAR=1e-3 and accuracy on held-out people; int8 embeddings lose at most 0.5 points', async () => {
    const source = new FolderSource(ORL);
    const split = splitHoldout(source.index, 10, 1);
    const pairs = holdoutPairs(source.index, split.holdout, { seed: 1 });
    const trainer = new Trainer(
      new SubsetSource(source, split.train),
      {
        model: { architecture: 'tiny', imageSize: Number(process.env.FACENET_ORL_SIZE ?? 48) },
        batch: { P: 10, K: 10 },
        optimizer: { name: 'adam', learningRate: 0.003 },
        steps: Number(process.env.FACENET_ORL_STEPS ?? 150),
        seed: 1,
      },
      { source, pairs },
    );
    const before = (await trainer.evaluate()).report;
    await trainer.run();
    const after = (await trainer.evaluate()).report;
    console.log(`      untrained: accuracy ${before.accuracy.toFixed(3)} VAL ${before.val.toFixed(3)} AUC ${before.auc.toFixed(3)}`);
    console.log(`      trained:   accuracy ${after.accuracy.toFixed(3)} VAL ${after.val.toFixed(3)} AUC ${after.auc.toFixed(3)}`);
    // Real ORL gains well over 0.15 of VAL; the synthetic stand-in (a clone without ../shared)
    // has ten held-out cartoon people whose VAL at 1e-3 moves less (0.044 -> 0.149 measured).
    const valGain = REAL_ORL ? 0.15 : 0.05;
    assert.ok(after.val >= before.val + valGain, `VAL ${before.val} -> ${after.val} (needs +${valGain})`);
    assert.ok(after.accuracy >= before.accuracy + 0.03, `accuracy ${before.accuracy} -> ${after.accuracy}`);
    assert.ok(after.auc >= before.auc + 0.05, `AUC ${before.auc} -> ${after.auc}`);

    const emb = await embedImages(trainer.model, source, pairs.keys);
    const f32 = scorePairs(emb, pairs).report;
    const i8 = scorePairs(emb, pairs, { int8: true }).report;
    console.log(
      `      int8: VAL ${i8.val.toFixed(4)} vs float ${f32.val.toFixed(4)}; accuracy ${i8.accuracy.toFixed(4)} vs ${f32.accuracy.toFixed(4)}`,
    );
    assert.ok(Math.abs(i8.val - f32.val) <= 0.005, `int8 VAL moved ${Math.abs(i8.val - f32.val)}`);
    trainer.dispose();
  });
});
