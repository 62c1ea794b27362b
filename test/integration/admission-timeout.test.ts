import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { api, startCluster, TestCluster } from '../cluster-helpers';
import { ORL, tempDir } from '../helpers';

describe('admission time budget (FACENET_ADMISSION_TIMEOUT_MS)', function () {
  this.timeout(120_000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster | undefined;

  before(async () => {
    t = tempDir('facenet-admission-');
    // 1 ms: no folder can be indexed in time, so the budget, not the data, decides.
    cluster = await startCluster(1, join(t.dir, 'ckpt'), { FACENET_ADMISSION_TIMEOUT_MS: '1' }, ['--no-miner', '--no-evaluator']);
  });
  after(async () => {
    await cluster?.stop();
    t?.cleanup();
  });

  it('a dataset that takes longer to index than the configured budget is refused, naming the field and the setting', async () => {
    const err = await api(cluster!.url, 'POST', '/v1/jobs', { dataset: { kind: 'folder', path: ORL }, train: { steps: 1 } }).catch(
      (e: { status: number; data: { issues: { path: string; message: string }[] } }) => e,
    );
    const e = err as { status: number; data: { issues: { path: string; message: string }[] } };
    assert.equal(e.status, 400);
    assert.equal(e.data.issues[0]?.path, 'dataset.path');
    assert.match(e.data.issues[0]?.message ?? '', /took longer than 0.001 s; split it, or raise FACENET_ADMISSION_TIMEOUT_MS/);
  });
});
