import { strict as assert } from 'node:assert';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, Browser } from 'playwright-core';
import { Coordinator } from '@facenet/coordinator';
import { deleteKeysUnder } from '@facenet/protocol';
import type { EvaluationRecord } from '@facenet/protocol';
import { api, JobView, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { ORL, tempDir } from '../helpers';

const CHROMIUM = '/usr/bin/chromium'; // Debian's package (.ci/run installs it); Playwright's own download cannot work here

describe('status page in a real browser (Debian chromium, playwright-core)', function () {
  this.timeout(300000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;
  let browser: Browser;

  before(async function () {
    if (!existsSync(CHROMIUM)) this.skip();
    t = tempDir('facenet-status-');
    cluster = await startCluster(2, join(t.dir, 'ckpt'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  after(async () => {
    await browser?.close();
    await cluster?.stop();
    t?.cleanup();
  });

  it('shows a job\'s loss curve, its evaluations with the best marked, its workers; pause and resume work from the page', async () => {
    const spec = {
      name: 'status-page', dataset: { kind: 'folder', path: ORL }, holdout: 10, worldSize: 2,
      train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 8, K: 4 }, virtualShards: 2, steps: 400, checkpointEvery: 4, seed: 9 },
    };
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec);
    await waitFor(async () => (await api<EvaluationRecord[]>(cluster.url, 'GET', `/v1/jobs/${job.id}/evaluations`)).length >= 2, 120000, 'two evaluations');

    const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${cluster.url}/?job=${job.id}`);
    const row = page.locator(`#jobs tr[data-job="${job.id}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /status-page/);
    await page.locator('#evaluations tbody tr[data-step]').nth(1).waitFor();
    const evaluations = await api<EvaluationRecord[]>(cluster.url, 'GET', `/v1/jobs/${job.id}/evaluations`);
    const shown = await page.locator('#evaluations tbody tr[data-step]').count();
    assert.ok(shown >= 2 && shown <= evaluations.length + 2, `${shown} evaluation rows for ${evaluations.length} evaluations`);
    const bestRow = page.locator('#evaluations tbody tr[data-best="true"]');
    assert.equal(await bestRow.count(), 1, 'one checkpoint is marked best');
    const best = (await api<JobView>(cluster.url, 'GET', `/v1/jobs/${job.id}`)).evaluation.best!;
    // The page refreshes every 2 s: the marked row follows the API's best (which may move on meanwhile).
    await waitFor(async () => {
      const marked = await bestRow.getAttribute('data-step');
      const now = (await api<JobView>(cluster.url, 'GET', `/v1/jobs/${job.id}`)).evaluation.best!;
      return marked === String(now.step) || marked === String(best.step);
    }, 10000, 'the best checkpoint to be marked');
    assert.ok((await page.locator('#loss-chart polyline').count()) >= 1, 'a loss curve is drawn');
    assert.ok((await page.locator('#val-chart polyline').count()) >= 2, 'VAL and accuracy curves are drawn');
    assert.equal(await page.locator('#workers tbody tr').count(), 2, 'both ranks are listed');
    assert.match(await page.locator('#workers tbody tr').first().innerText(), /\d+ ms/);
    const shot = join(process.env.FACENET_SCREENSHOT_DIR ?? t.dir, 'status-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(statSync(shot).size > 10_000, 'a screenshot was saved');

    await row.locator('button[data-action="pause"]').click();
    await waitForState(cluster.url, job.id, ['paused'], 60000);
    await page.locator(`#jobs tr[data-job="${job.id}"] button[data-action="resume"]`).click();
    await waitForState(cluster.url, job.id, ['running', 'pending'], 60000);
    await page.locator(`#jobs tr[data-job="${job.id}"] button[data-action="cancel"]`).click();
    await waitForState(cluster.url, job.id, ['cancelled'], 60000);
    assert.deepEqual(errors, [], 'no script errors on the page');
    await page.close();
  });

  it('behind API tokens: asks for one, then shows the jobs with it', async () => {
    const admin = 'status-admin-token-0123456789';
    const tokens = join(t.dir, 'tokens');
    writeFileSync(tokens, `admin:${admin}\n`);
    const coordinator = new Coordinator({ port: 0, prefix: `fnstatus-${process.pid}`, checkpointRoot: join(t.dir, 'tok-ckpt'), apiTokensFile: tokens }, () => undefined);
    await coordinator.start();
    const page = await browser.newPage();
    try {
      const job = await api<JobView>(coordinator.url, 'POST', '/v1/jobs', { name: 'behind-tokens', dataset: { kind: 'folder', path: ORL }, holdout: 10, worldSize: 1, train: { batch: { P: 4, K: 2 }, steps: 2 } }, admin);
      await page.goto(coordinator.url);
      const input = page.locator('[data-testid="token"]');
      await input.waitFor({ state: 'visible' });
      assert.equal(await page.locator(`#jobs tr[data-job="${job.id}"]`).count(), 0, 'nothing shown without a token');
      await input.fill(admin);
      await page.locator('#token-form button').click();
      await page.locator(`#jobs tr[data-job="${job.id}"]`).waitFor();
      assert.match(await page.locator(`#jobs tr[data-job="${job.id}"]`).innerText(), /behind-tokens/);
    } finally {
      await page.close();
      await coordinator.close();
      await deleteKeysUnder(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', `fnstatus-${process.pid}`);
    }
  });
});
