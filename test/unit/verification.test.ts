import { strict as assert } from 'node:assert';
import { accuracyAt, bestAccuracyThreshold, evaluateFolds, roc, thresholdForFar, valFarAt } from '@facenet/core';

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);
// Four same pairs, four different ones.
const DIST = [0.1, 0.2, 0.3, 0.4, 0.25, 0.5, 0.62, 0.7];
const SAME = [true, true, true, true, false, false, false, false];

describe('verification metrics on constructed distances', () => {
  it('VAL and FAR at a threshold', () => {
    const r = valFarAt(DIST, SAME, 0.3);
    assert.deepEqual([r.trueAccepts, r.falseAccepts, r.same, r.different], [3, 1, 4, 4]);
    close(r.val, 0.75);
    close(r.far, 0.25);
    close(accuracyAt(DIST, SAME, 0.3), 6 / 8);
  });

  it('best-accuracy threshold sits between the two distances that bound it', () => {
    const r = bestAccuracyThreshold(DIST, SAME);
    close(r.threshold, 0.45);
    close(r.accuracy, 7 / 8);
  });

  it('FAR threshold interpolates between sorted different-pair distances', () => {
    close(thresholdForFar(DIST, SAME, 0.25), 0.25); // exactly one of four accepted
    close(thresholdForFar(DIST, SAME, 0.375), 0.375); // halfway between 0.25 and 0.5
    close(thresholdForFar(DIST, SAME, 0.1), 0.1); // 0.4 of the way from 0 to 0.25
    assert.equal(valFarAt(DIST, SAME, thresholdForFar(DIST, SAME, 0.25)).falseAccepts, 1);
  });

  it('ROC area equals the probability a same pair is closer than a different pair', () => {
    const r = roc(DIST, SAME);
    close(r.auc, 14 / 16);
    assert.equal(r.fpr[r.fpr.length - 1], 1);
    assert.equal(r.tpr[r.tpr.length - 1], 1);
  });

  it('fold accuracy uses thresholds chosen on the other folds', () => {
    const fold = [0, 0, 1, 1, 0, 0, 1, 1];
    const r = evaluateFolds(DIST, SAME, fold, 0.5);
    // Fold 0 is scored at fold 1's threshold (0.51) and fold 1 at fold 0's (0.225).
    close(r.thresholds[0]!, 0.51);
    close(r.thresholds[1]!, 0.225);
    close(r.accuracy, 0.5);
    close(r.accuracyStd, 0);
    // VAL@FAR=0.5: fold 0 at 0.62 accepts everything; fold 1 at 0.25 accepts nothing.
    close(r.val, 0.5);
    close(r.far, 0.5);
    assert.equal(r.folds, 2);
  });
});
