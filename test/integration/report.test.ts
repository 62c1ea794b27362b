import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { CLI, LFW, ORL, tempDir } from '../helpers';
import { CHROMIUM, needLfw, needTools } from '../requirements';

const run = promisify(execFile);
const facenet = (...args: string[]) => run(process.execPath, [CLI, ...args], { maxBuffer: 64 << 20 });

describe('facenet evaluate --report: an HTML report, checked in Debian chromium', function () {
  this.timeout(300000);
  let t: ReturnType<typeof tempDir>;
  before(function () {
    needLfw(this);
    needTools(this, 'chromium');
    t = tempDir('facenet-report-');
  });
  after(() => t?.cleanup());

  it('shows the numbers of the JSON output, the ROC and histograms, and the worst errors as loaded image pairs', async () => {
    const ckpt = join(t.dir, 'run');
    await facenet(
      'train',
      '--data',
      ORL,
      '--model',
      'tiny',
      '--image-size',
      '32',
      '--P',
      '8',
      '--K',
      '4',
      '--steps',
      '20',
      '--holdout',
      '0',
      '--checkpoint-dir',
      ckpt,
      '--backend',
      'wasm',
    );
    const dir = join(t.dir, 'report');
    const r = await facenet(
      'evaluate',
      '--pairs',
      join(LFW, 'pairs.txt'),
      '--images',
      join(LFW, 'images'),
      '--folds',
      '1',
      '--checkpoint',
      ckpt,
      '--crop-fraction',
      '0.5',
      '--report',
      dir,
      '--json',
    );
    assert.match(r.stderr, /report written to .*index\.html/);
    const json = JSON.parse(r.stdout) as { accuracy: number; val: number; auc: number; pairs: number; threshold: number };
    assert.equal(readdirSync(join(dir, 'pairs')).length, 32, '8 false accepts and 8 false rejects, two images each');

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--allow-file-access-from-files',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 1200 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`file://${join(dir, 'index.html')}`);
      const numbers = await page.locator('#numbers').innerText();
      assert.ok(numbers.includes(`${(100 * json.accuracy).toFixed(1)}%`), numbers);
      assert.ok(numbers.includes(json.auc.toFixed(4)), numbers);
      assert.ok(numbers.includes(`${json.pairs} in 1 folds`), numbers);
      const rocPoints = (await page.locator('#roc polyline').getAttribute('points'))?.split(' ').length ?? 0;
      assert.ok(rocPoints > 100, `ROC with ${rocPoints} points`);
      assert.equal(await page.locator('#histogram polyline').count(), 2, 'matched and mismatched histograms');
      assert.ok((await page.locator('#histogram').innerHTML()).includes(`threshold ${json.threshold.toFixed(3)}`));
      for (const section of ['#false-accepts', '#false-rejects']) {
        assert.equal(await page.locator(`${section} figure`).count(), 8, section);
        const loaded = await page
          .locator(`${section} img`)
          .evaluateAll((imgs) => imgs.map((i) => (i as unknown as { naturalWidth: number }).naturalWidth));
        assert.ok(
          loaded.every((w) => w > 0),
          `${section}: every image loads (${loaded.join(',')})`,
        );
      }
      // False accepts are different people nearer than the threshold, sorted nearest first.
      const fa = (await page.locator('#false-accepts figcaption').allInnerTexts()).map(Number);
      assert.deepEqual(
        fa,
        [...fa].sort((a, b) => a - b),
      );
      assert.ok(fa.every((d) => d <= json.threshold + 1e-3));
      assert.deepEqual(errors, []);
      const shot = join(t.dir, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      if (process.env.FACENET_REPORT_SCREENSHOT)
        writeFileSync(process.env.FACENET_REPORT_SCREENSHOT, await page.screenshot({ fullPage: true }));
    } finally {
      await browser.close();
    }
  });
});
