import { strict as assert } from 'node:assert';
import { checkpointsToDelete } from '@facenet/coordinator';

const at = (...steps: number[]) => steps.map((step) => ({ step, dir: `/ckpt/job/step-${step}`, createdAt: '' }));

describe('checkpoint retention', () => {
  it('keeps everything when keepLast is 0', () => {
    assert.deepEqual(checkpointsToDelete(at(10, 20, 30), 0, undefined, new Set()), []);
  });

  it('keeps the newest keepLast and the best by VAL, deletes the rest', () => {
    assert.deepEqual(
      checkpointsToDelete(at(10, 20, 30, 40), 2, 10, new Set()).map((c) => c.step),
      [20],
    );
    assert.deepEqual(
      checkpointsToDelete(at(10, 20, 30, 40), 1, 40, new Set()).map((c) => c.step),
      [10, 20, 30],
    );
  });

  it('never deletes a checkpoint another job restores from', () => {
    assert.deepEqual(
      checkpointsToDelete(at(10, 20, 30), 1, undefined, new Set(['/ckpt/job/step-10'])).map((c) => c.step),
      [20],
    );
  });
});
