import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, copyFileSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CLI, LFW, tempDir } from '../helpers';
import { needLfw } from '../requirements';

const run = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function facenet(...args: string[]): Promise<Result> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { env: { ...process.env, FACENET_DEBUG: '' }, maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const noStack = (r: Result) => assert.ok(!/\n\s+at .+:\d+:\d+/.test(r.stderr), `stack trace printed:\n${r.stderr}`);

describe('facenet CLI', function () {
  this.timeout(180000);
  let t: ReturnType<typeof tempDir>;
  let data: string;
  let ckpt: string;

  before(async () => {
    t = tempDir('facenet-cli-');
    data = join(t.dir, 'faces');
    ckpt = join(t.dir, 'run');
    const s = await facenet('data', 'synth', data, '--identities', '8', '--images', '5', '--size', '40');
    assert.equal(s.code, 0, s.stderr);
  });
  after(() => t.cleanup());

  it('rejects bad flags and bad paths with one line, no stack trace', async () => {
    const badNumber = await facenet('train', '--steps', 'abc');
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /--steps <n>.*'abc' is invalid.*must be an integer/);
    const badModel = await facenet('train', '--model', 'vgg');
    assert.match(badModel.stderr, /must be one of tiny, inception-small, resnet-small/);
    const missing = await facenet('train', '--data', join(t.dir, 'nope'));
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /error: cannot read dataset folder .*nope: ENOENT/);
    const noCkpt = await facenet('verify', 'a.jpg', 'b.jpg', '--checkpoint', join(t.dir, 'nope'));
    assert.match(noCkpt.stderr, /error: /);
    for (const r of [badNumber, badModel, missing, noCkpt]) noStack(r);
  });

  it('names every bad field of a job spec', async () => {
    const spec = join(t.dir, 'bad.yaml');
    writeFileSync(spec, 'batch:\n  P: many\nselection: hardest\nbogus: 1\n');
    const r = await facenet('train', '--config', spec);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /batch\.P/);
    assert.match(r.stderr, /selection/);
    assert.match(r.stderr, /bogus/);
    noStack(r);
  });

  it('trains, then embeds, verifies, identifies and clusters with the checkpoint', async () => {
    const tr = await facenet(
      'train',
      '--data',
      data,
      '--steps',
      '6',
      '--P',
      '4',
      '--K',
      '4',
      '--model',
      'tiny',
      '--image-size',
      '32',
      '--holdout',
      '2',
      '--crop-fraction',
      '0.8',
      '--checkpoint-dir',
      ckpt,
      '--json',
    );
    assert.equal(tr.code, 0, tr.stderr);
    const manifest = JSON.parse(readFileSync(join(ckpt, 'step-000006', 'manifest.json'), 'utf8')) as {
      preprocessing?: { cropFraction: number };
    };
    assert.deepEqual(manifest.preprocessing, { cropFraction: 0.8 }, 'the checkpoint records the crop it was trained with');
    const events = tr.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; [k: string]: unknown });
    assert.equal(events.filter((e) => e.event === 'step').length, 6);
    assert.ok(events.some((e) => e.event === 'evaluation' && typeof e.val === 'number'));
    assert.equal(events.at(-1)?.event, 'done');
    assert.ok(existsSync(join(ckpt, 'step-000006', 'manifest.json')));

    const one = join(data, 'synthetic_0000', '0000.png');
    const two = join(data, 'synthetic_0000', '0001.png');
    const emb = await facenet('embed', one, '--checkpoint', ckpt);
    assert.equal(emb.code, 0, emb.stderr);
    assert.match(emb.stderr, /crop fraction 0\.8 \(as trained\)/, 'commands default to the trained crop');
    const vec = (JSON.parse(emb.stdout) as { embeddings: { embedding: number[] }[] }).embeddings[0]!.embedding;
    assert.equal(vec.length, 128);
    assert.ok(Math.abs(Math.hypot(...vec) - 1) < 1e-3, 'unit length');

    const bin = join(t.dir, 'e.i8');
    const q = await facenet('embed', data, '--checkpoint', ckpt, '--format', 'int8', '--out', bin);
    assert.equal(q.code, 0, q.stderr);
    assert.equal(statSync(bin).size, 40 * 128, '128 bytes per face');

    const v = await facenet('verify', one, two, '--checkpoint', ckpt, '--json');
    const verdict = JSON.parse(v.stdout) as { distance: number; same: boolean; threshold: number };
    assert.equal(typeof verdict.same, 'boolean');
    assert.equal(verdict.same, verdict.distance <= verdict.threshold);

    const id = await facenet('identify', '--gallery', data, two, '--checkpoint', ckpt, '--k', '3', '--threshold', '4', '--json');
    const res = JSON.parse(id.stdout) as { results: { identity: string; neighbours: { path: string }[] }[] };
    assert.equal(res.results[0]!.neighbours[0]!.path, two, 'the probe itself is its own nearest neighbour');

    const cl = await facenet('cluster', join(data, 'synthetic_0001'), '--checkpoint', ckpt, '--threshold', '10', '--json');
    const groups = (JSON.parse(cl.stdout) as { clusters: string[][] }).clusters;
    assert.equal(groups.length, 1, 'a huge threshold merges everything');
    assert.equal(groups[0]!.length, 5);
  });

  it('evaluates on LFW pairs (one fold) and writes an ROC image', async function () {
    needLfw(this);
    const png = join(t.dir, 'roc.png');
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
      '--roc',
      png,
      '--crop-fraction',
      '0.5',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /crop fraction 0\.5 \(--crop-fraction; the model was trained with 0\.8\)/, 'an explicit crop wins and says so');
    const report = JSON.parse(r.stdout) as { pairs: number; accuracy: number; val: number; auc: number };
    assert.equal(report.pairs, 600);
    assert.ok(report.accuracy > 0 && report.accuracy <= 1);
    assert.deepEqual([...readFileSync(png).subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
    const bad = join(t.dir, 'pairs-bad.txt');
    writeFileSync(bad, '1\t1\nAnn\t1\n Bob\t1\tCid\t1\n');
    const e = await facenet('evaluate', '--pairs', bad, '--images', data, '--checkpoint', ckpt);
    assert.match(e.stderr, /pairs-bad\.txt:2: matched pair needs/);
    noStack(e);
  });

  it('keeps a corrupt image from stopping training and reports it', async () => {
    const dir = join(t.dir, 'with-corrupt');
    for (const p of ['synthetic_0000', 'synthetic_0001', 'synthetic_0002']) {
      mkdirSync(join(dir, p), { recursive: true });
      for (const f of readdirSync(join(data, p))) copyFileSync(join(data, p, f), join(dir, p, f));
    }
    writeFileSync(join(dir, 'synthetic_0001', 'broken.png'), Buffer.from('not a png at all'));
    const r = await facenet(
      'train',
      '--data',
      dir,
      '--steps',
      '2',
      '--P',
      '3',
      '--K',
      '6',
      '--image-size',
      '32',
      '--holdout',
      '0',
      '--checkpoint-dir',
      join(t.dir, 'run2'),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /skipped .*broken\.png/);
    assert.match(r.stdout, /done: 2 steps, .* [1-9]\d* images skipped/);
  });
});
