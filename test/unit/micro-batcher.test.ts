import { strict as assert } from 'node:assert';
import { MicroBatcher } from '../../packages/cli/src/serve/micro-batcher';

describe('MicroBatcher', () => {
  it('runs one batch at a time, gathers what arrives meanwhile, splits at maxBatch and keeps each request in order', async () => {
    const batches: number[][] = [];
    let inFlight = 0;
    const b = new MicroBatcher<number, number>(
      async (items) => {
        assert.equal(++inFlight, 1, 'two batches ran at once');
        batches.push(items);
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
        return items.map((x) => x * 10);
      },
      { maxBatch: 4, maxDelayMs: 0 },
    );
    const first = b.submit([1]); // an idle batcher runs it at once, alone
    await new Promise((r) => setImmediate(r));
    const rest = [b.submit([2, 3]), b.submit([4, 5, 6]), b.submit([7])];
    assert.deepEqual(await first, [10]);
    assert.deepEqual(await Promise.all(rest), [[20, 30], [40, 50, 60], [70]]);
    assert.deepEqual(batches, [[1], [2, 3, 4, 5], [6, 7]]);
  });

  it('fails every request of a failing batch, and the next batch still runs', async () => {
    let calls = 0;
    const b = new MicroBatcher<number, number>(
      async (items) => {
        if (calls++ === 0) throw new Error('model failed');
        return items;
      },
      { maxBatch: 8, maxDelayMs: 1 },
    );
    const [x, y] = [b.submit([1]), b.submit([2])];
    await assert.rejects(x, /model failed/);
    await assert.rejects(y, /model failed/);
    assert.deepEqual(await b.submit([3]), [3]);
  });
});
