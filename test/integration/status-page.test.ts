import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { strict as assert } from 'node:assert';
import IORedis from 'ioredis';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, Browser } from 'playwright-core';
import { Coordinator, parseQueues } from '@facenet/coordinator';
import { redisKeys } from '@facenet/protocol';
import { deleteKeysUnder } from '@facenet/service-kit';
import type { EvaluationRecord } from '@facenet/protocol';
import { api, JobView, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { ORL, tempDir } from '../helpers';
import { CHROMIUM, needTools } from '../requirements';

describe('status page in a real browser (Debian chromium, playwright-core)', function () {
  this.timeout(300000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;
  let browser: Browser;

  before(async function () {
    needTools(this, 'chromium');
    t = tempDir('facenet-status-');
    cluster = await startCluster(2, join(t.dir, 'ckpt'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await cluster?.stop();
    t?.cleanup();
  });

  it("shows a job's loss curve, its evaluations with the best marked, its workers; pause and resume work from the page", async () => {
    const spec = {
      name: 'status-page',
      dataset: { kind: 'folder', path: ORL },
      holdout: 10,
      worldSize: 2,
      train: {
        model: { architecture: 'tiny', imageSize: 32 },
        batch: { P: 8, K: 4 },
        virtualShards: 2,
        steps: 400,
        checkpointEvery: 4,
        seed: 9,
      },
    };
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec);
    await waitFor(
      async () => (await api<EvaluationRecord[]>(cluster.url, 'GET', `/v1/jobs/${job.id}/evaluations`)).length >= 2,
      120000,
      'two evaluations',
    );

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
    await waitFor(
      async () => {
        const marked = await bestRow.getAttribute('data-step');
        const now = (await api<JobView>(cluster.url, 'GET', `/v1/jobs/${job.id}`)).evaluation.best!;
        return marked === String(now.step) || marked === String(best.step);
      },
      10000,
      'the best checkpoint to be marked',
    );
    assert.ok((await page.locator('#loss-chart polyline').count()) >= 1, 'a loss curve is drawn');
    assert.ok((await page.locator('#val-chart polyline').count()) >= 2, 'VAL and accuracy curves are drawn');
    assert.equal(await page.locator('#workers tbody tr').count(), 2, 'both ranks are listed');
    assert.match(await page.locator('#workers tbody tr').first().innerText(), /\d+ ms/);
    // The best checkpoint's report opens from its row, in a new tab, with its figures loaded.
    const [report] = await Promise.all([page.context().waitForEvent('page'), bestRow.locator('[data-testid="report-link"]').click()]);
    await report.locator('#roc').waitFor();
    const faces = await report.evaluate<boolean[]>('[...document.images].map((i) => i.complete && i.naturalWidth > 0)');
    assert.ok(faces.length >= 2 && faces.every(Boolean), `report images loaded: ${faces}`);
    await report.close();
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

  it("/docs renders the API reference from the OpenAPI document in Chromium, under the status page's CSP, with nothing refused or failing", async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('requestfailed', (r) => problems.push(`failed: ${r.url()}`));
    const res = await page.goto(`${cluster.url}/docs`);
    assert.equal(res?.status(), 200);
    const csp = res?.headers()['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'none'; script-src 'self';/);
    assert.match(csp, /frame-ancestors 'none'/);
    await page.locator('.opblock-summary-path', { hasText: '/v1/sweeps/{id}' }).first().waitFor({ timeout: 30_000 });
    const paths = await page.locator('.opblock-summary-path').allInnerTexts();
    const documented = Object.keys(((await (await fetch(`${cluster.url}/v1/openapi.json`)).json()) as { paths: object }).paths);
    for (const p of documented)
      assert.ok(
        paths.some((x) => x.replace(/\u200b/g, '') === p),
        `${p} is rendered`,
      );
    assert.equal(await page.locator('button.authorize').count(), 1, 'an Authorize button for the bearer token');
    assert.deepEqual(problems, []);
    await page.close();
  });

  it('the page sends its own CSP, refuses to be framed and sniffed; a foreign site cannot frame it (clickjacking)', async () => {
    const res = await fetch(`${cluster.url}/`);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /script-src[^;]*unsafe-inline/, 'no inline script allowed');
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.doesNotMatch(await res.text(), /<script>/, 'the page holds no inline script');
    // A foreign origin (another port) embedding the page in an iframe gets nothing rendered.
    const evil = createServer((_req, r) =>
      r.writeHead(200, { 'content-type': 'text/html' }).end(`<iframe id="f" src="${cluster.url}/"></iframe>`),
    );
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', () => r()));
    const page = await browser.newPage();
    try {
      await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
      await new Promise((r) => setTimeout(r, 1500));
      const framed = page.frames().find((f) => f !== page.mainFrame());
      assert.ok(framed, 'the iframe exists');
      assert.equal(await framed.locator('#jobs').count(), 0, 'the status page did not render inside a foreign frame');
    } finally {
      await page.close();
      evil.close();
    }
  });

  it('behind API tokens: asks for one, then shows the jobs with it', async () => {
    const admin = 'status-admin-token-0123456789';
    const tokens = join(t.dir, 'tokens');
    writeFileSync(tokens, `admin:${admin}\n`);
    const prefix = `fnstatus-${process.pid}`;
    const reports = join(t.dir, 'tok-reports');
    const coordinator = new Coordinator(
      { port: 0, prefix, checkpointRoot: join(t.dir, 'tok-ckpt'), apiTokensFile: tokens, reportRoot: reports },
      () => undefined,
    );
    await coordinator.start();
    const page = await browser.newPage();
    const redis = new IORedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    try {
      const job = await api<JobView>(
        coordinator.url,
        'POST',
        '/v1/jobs',
        {
          name: 'behind-tokens',
          dataset: { kind: 'folder', path: ORL },
          holdout: 10,
          worldSize: 1,
          train: { batch: { P: 4, K: 2 }, steps: 2 },
        },
        admin,
      );
      // No workers here: an evaluation record and its report file as the evaluator would leave them.
      mkdirSync(join(reports, job.id), { recursive: true });
      writeFileSync(
        join(reports, job.id, 'step-000002.html'),
        '<!doctype html><title>report</title><h1 id="marker">report behind tokens</h1>',
      );
      const record = {
        jobId: job.id,
        step: 2,
        checkpointDir: '-',
        set: 'holdout',
        pairs: 10,
        folds: 2,
        accuracy: 0.5,
        accuracyStd: 0,
        val: 0,
        valStd: 0,
        far: 0,
        farTarget: 1e-3,
        auc: 0.5,
        threshold: 1,
        droppedPairs: 0,
        skippedImages: 0,
        seconds: 1,
        at: new Date().toISOString(),
        report: `${job.id}/step-000002.html`,
      };
      await redis.rpush(redisKeys(prefix).evaluations(job.id), JSON.stringify(record));
      assert.equal(
        (await fetch(`${coordinator.url}/v1/jobs/${job.id}/evaluations/2/report`)).status,
        401,
        'reports need a token like the rest of the API',
      );
      await page.goto(`${coordinator.url}/?job=${job.id}`);
      const input = page.locator('[data-testid="token"]');
      await input.waitFor({ state: 'visible' });
      assert.equal(await page.locator(`#jobs tr[data-job="${job.id}"]`).count(), 0, 'nothing shown without a token');
      await input.fill(admin);
      await page.locator('#token-form button').click();
      await page.locator(`#jobs tr[data-job="${job.id}"]`).waitFor();
      assert.match(await page.locator(`#jobs tr[data-job="${job.id}"]`).innerText(), /behind-tokens/);
      // A plain link would arrive without the token: the page opens a signed link valid for a
      // minute, where the report has its own CSP and an opaque origin, so it cannot read the token.
      const [report] = await Promise.all([page.context().waitForEvent('page'), page.locator('[data-testid="report-link"]').click()]);
      await report.locator('#marker').waitFor();
      assert.match(report.url(), /\/report\?link=[^&]+$/);
      // A string, run in the report's page: the test's own types know no localStorage.
      const stolen = await report.evaluate<string | null>(
        "(() => { try { return localStorage.getItem('facenetToken'); } catch (e) { return 'blocked: ' + e.name; } })()",
      );
      assert.equal(stolen, 'blocked: SecurityError', "the report cannot read the page's storage");
      const direct = await fetch(report.url());
      assert.match(direct.headers.get('content-security-policy') ?? '', /sandbox/);
      assert.equal((await fetch(report.url().replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')))).status, 403, 'a tampered link is refused');
      await report.close();
    } finally {
      redis.disconnect();
      await page.close();
      await coordinator.close();
      await deleteKeysUnder(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix);
    }
  });

  it("shows a sweep's trials: each one's score per evaluation, its parameters, and where and why a stopped one ended", async () => {
    const sweep = await api<{ id: string }>(cluster.url, 'POST', '/v1/sweeps', {
      name: 'status-sweep',
      base: {
        dataset: { kind: 'synthetic', identities: 40, imagesPerIdentity: 10 },
        holdout: 10,
        worldSize: 1,
        train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 8, K: 4 }, virtualShards: 1, steps: 60, checkpointEvery: 4 },
      },
      parameters: [{ path: 'train.optimizer.learningRate', values: [0.003, 0.00001, 0.001] }],
      search: { kind: 'grid' },
      budget: { maxTrials: 3, parallel: 2 },
      earlyStopping: { rule: 'median', graceEvaluations: 2, minTrials: 1 },
    });
    type Sweep = { state: string; trials: { index: number; state: string; scores: number[]; stopReason?: string }[] };
    let done: Sweep | undefined;
    await waitFor(
      async () => (done = await api<Sweep>(cluster.url, 'GET', `/v1/sweeps/${sweep.id}`)).state === 'completed',
      180_000,
      'the sweep to complete',
    );
    const page = await browser.newPage({ viewport: { width: 1400, height: 1400 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(`${cluster.url}/?sweep=${sweep.id}`);
      await page.locator('#sweep-trials tbody tr[data-trial="2"]').waitFor();
      const scored = done!.trials.filter((t) => t.scores.length);
      assert.ok(scored.length >= 2, JSON.stringify(done!.trials));
      assert.equal(await page.locator('#sweep-chart polyline').count(), scored.length, 'a curve per scored trial');
      const stopped = done!.trials.filter((t) => t.state === 'stopped');
      assert.equal(await page.locator('#sweep-chart circle').count(), stopped.length, 'a mark where each stopped trial ended');
      for (const t of done!.trials) {
        const row = await page.locator(`#sweep-trials tbody tr[data-trial="${t.index}"]`).innerText();
        assert.match(row, new RegExp(`#${t.index}\\s+${t.state}`), row);
        assert.match(row, /train\.optimizer\.learningRate = /);
        assert.equal(
          row.split(/\s+/).filter((w) => /^-?\d\.\d{3}$/.test(w)).length >= t.scores.length,
          true,
          `its ${t.scores.length} scores: ${row}`,
        );
        if (t.stopReason) assert.ok(row.includes(t.stopReason), `${row} names why it stopped: ${t.stopReason}`);
      }
      assert.match(await page.locator('#sweep-caption').innerText(), /status-sweep: val \(maximize\) per evaluation/);
      assert.deepEqual(errors, []);
    } finally {
      await page.close();
    }
  });

  it("a team token's page shows its queue's jobs and sweeps only; the queue panel shows every queue's totals", async () => {
    const admin = 'status-admin-token-0123456789';
    const teamA = 'status-team-a-token-0123456789';
    const tokens = join(t.dir, 'team-tokens');
    writeFileSync(tokens, `admin:${admin}\nteam:team-a:${teamA}\n`);
    const prefix = `fnstatus-team-${process.pid}`;
    const coordinator = new Coordinator(
      { port: 0, prefix, checkpointRoot: join(t.dir, 'team-ckpt'), apiTokensFile: tokens, queues: parseQueues('team-a=2:1,team-b=2:1') },
      () => undefined,
    );
    await coordinator.start();
    const page = await browser.newPage();
    const spec = (queue: string, name: string) => ({
      name,
      queue,
      dataset: { kind: 'folder', path: ORL },
      holdout: 10,
      train: { batch: { P: 4, K: 2 }, steps: 2 },
    });
    try {
      const mine = await api<JobView>(coordinator.url, 'POST', '/v1/jobs', spec('team-a', 'a-job'), admin);
      const theirs = await api<JobView>(coordinator.url, 'POST', '/v1/jobs', spec('team-b', 'b-job'), admin);
      const sweep = await api<{ id: string }>(
        coordinator.url,
        'POST',
        '/v1/sweeps',
        { name: 'a-sweep', base: spec('team-a', 'trial'), parameters: [{ path: 'train.steps', values: [2, 3] }], search: { kind: 'grid' } },
        teamA,
      );
      await page.goto(coordinator.url);
      await page.locator('[data-testid="token"]').waitFor({ state: 'visible' });
      await page.locator('[data-testid="token"]').fill(teamA);
      await page.locator('#token-form button').click();
      await page.locator(`#jobs tr[data-job="${mine.id}"]`).waitFor();
      assert.equal(await page.locator(`#jobs tr[data-job="${theirs.id}"]`).count(), 0, "team-b's job is not on team-a's page");
      assert.match(await page.locator(`#jobs tr[data-job="${mine.id}"]`).innerText(), /a-job.*team-a/s);
      await page.locator('#sweeps tbody tr', { hasText: sweep.id }).waitFor();
      assert.match(await page.locator('#sweeps tbody tr', { hasText: sweep.id }).innerText(), /a-sweep.*running/s);
      // The queue view is the scheduler's last decision (every 500 ms) and the page refreshes every 2 s: wait for team-b's job to show.
      const teamB = page.locator('#queues tbody tr', { hasText: 'team-b' });
      await waitFor(
        async () => /team-b\s+2\s+1\s+0\s+0\s+0.0%\s+0\s+1/.test(await teamB.innerText().catch(() => '')),
        20_000,
        "team-b's pending job in the queue panel",
      );
      assert.equal(await page.locator('#queues tbody tr').count(), 3);
    } finally {
      await page.close();
      await coordinator.close();
      await deleteKeysUnder(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix);
    }
  });
});
