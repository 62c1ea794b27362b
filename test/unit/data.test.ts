import { strict as assert } from 'node:assert';
import { copyFileSync, mkdirSync, writeFileSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import {
  DatasetError,
  decodeNetpbm,
  decodeSquare,
  FolderSource,
  scanPeopleFolderAsync,
  ImageDecodeError,
  loadImages,
  samplePK,
  compilePKOptions,
  splitByIdentity,
  SyntheticSource,
  ConfigError,
  splitHoldout,
  rngFor,
  sampled,
} from '@facenet/core';
import { ORL, tempDir } from '../helpers';

describe('data', () => {
  it('reads ORL as a people-folder dataset (40 identities x 10 PGM images)', async () => {
    const src = new FolderSource(ORL);
    assert.equal(src.index.names.length, 40);
    assert.ok(src.index.images.every((i) => i.length === 10));
    const img = await src.read(src.index.images[0]![0]!, 32);
    assert.equal(img.pixels.length, 32 * 32 * 3);
    // Greyscale: the three channels agree; and the face is not a flat image.
    assert.equal(img.pixels[0], img.pixels[1]);
    assert.ok(new Set(img.pixels).size > 50);
  });

  it('skips broken symlinks and unreadable entries in a dataset folder instead of failing', () => {
    const t = tempDir();
    try {
      for (const [id, n] of [
        ['s1', 1],
        ['s1', 2],
        ['s2', 1],
        ['s2', 2],
      ] as const) {
        mkdirSync(join(t.dir, id), { recursive: true });
        copyFileSync(join(ORL, id, `${n}.pgm`), join(t.dir, id, `${n}.pgm`));
      }
      symlinkSync('/nonexistent/identity', join(t.dir, 'dangling-identity'));
      symlinkSync('/nonexistent/face.pgm', join(t.dir, 's1', 'dangling.pgm'));
      const src = new FolderSource(t.dir);
      assert.deepEqual(src.index.names, ['s1', 's2']);
      assert.equal(src.index.images[0]!.length, 3, 'a dangling image link is indexed, then skipped and counted when it fails to decode');
    } finally {
      t.cleanup();
    }
  });

  it('scans a folder asynchronously to the same index, bounded in images and time', async () => {
    assert.deepEqual(await scanPeopleFolderAsync(ORL), new FolderSource(ORL).index);
    await assert.rejects(
      scanPeopleFolderAsync(ORL, { maxImages: 50 }),
      (e: unknown) => e instanceof DatasetError && /more than 50 images/.test(e.message),
    );
    await assert.rejects(
      scanPeopleFolderAsync(ORL, { deadlineMs: -1 }),
      (e: unknown) => e instanceof DatasetError && /took longer than/.test(e.message),
    );
    await assert.rejects(scanPeopleFolderAsync('/no/such/folder'), DatasetError);
  });

  it('decodes binary and ASCII PGM the same way, and rejects a truncated file', () => {
    const p5 = readFileSync(join(ORL, 's1', '1.pgm'));
    const bin = decodeNetpbm('1.pgm', p5);
    assert.deepEqual([bin.width, bin.height, bin.channels], [92, 112, 1]);
    const ascii = Buffer.from(`P2\n# comment\n92 112\n255\n${Array.from(bin.data).join(' ')}\n`);
    assert.deepEqual([...decodeNetpbm('a.pgm', ascii).data], [...bin.data]);
    assert.throws(() => decodeNetpbm('t.pgm', p5.subarray(0, 500)), /truncated pixel data/);
  });

  it('skips and reports an undecodable image instead of failing the batch', async () => {
    const t = tempDir();
    try {
      for (const person of ['a', 'b']) {
        mkdirSync(join(t.dir, person));
        copyFileSync(join(ORL, 's1', '1.pgm'), join(t.dir, person, '1.pgm'));
        copyFileSync(join(ORL, 's1', '2.pgm'), join(t.dir, person, '2.pgm'));
      }
      writeFileSync(join(t.dir, 'b', '3.jpg'), 'this is not a jpeg');
      const src = new FolderSource(t.dir);
      const items = src.index.images.flatMap((imgs, identity) => imgs.map((key) => ({ identity, key })));
      const r = await loadImages(src, items, { size: 24, augment: null });
      assert.equal(r.count, 4);
      assert.equal(r.skipped.length, 1);
      assert.match(r.skipped[0]!.key, /3\.jpg$/);
      await assert.rejects(decodeSquare(join(t.dir, 'b', '3.jpg'), 24), ImageDecodeError);
    } finally {
      t.cleanup();
    }
  });

  it('draws identity-balanced P x K batches, deterministic in (seed, step)', () => {
    const src = new FolderSource(ORL);
    const cfg = compilePKOptions({ P: 6, K: 4 });
    const a = samplePK(src.index, cfg, 3, 17);
    const b = samplePK(src.index, cfg, 3, 17);
    const c = samplePK(src.index, cfg, 3, 18);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.items, c.items);
    assert.equal(new Set(a.identities).size, 6);
    assert.equal(a.items.length, 24);
    for (const id of a.identities) assert.equal(a.items.filter((i) => i.identity === id).length, 4);
    const shards = splitByIdentity(a, 3);
    for (const shard of shards) assert.equal(new Set(shard.map((i) => i.identity)).size, 2);
  });

  it('draws k distinct items uniformly without touching the rest (sampled), and a batch from 100,000 identities in well under a millisecond', () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const counts = Array(10).fill(0) as number[];
    for (let t = 0; t < 4000; t++) {
      const s = sampled(items, 3, rngFor('sampled', t));
      assert.equal(new Set(s).size, 3);
      for (const x of s) counts[x]!++;
    }
    // Each item is drawn in 3/10 of the trials: 1,200 expected, binomial sd ~29.
    for (const c of counts) assert.ok(Math.abs(c - 1200) < 150, counts.join(' '));
    assert.deepEqual(
      sampled(items, 20, rngFor('x')).sort((a, b) => a - b),
      items,
      'k beyond n: all of them',
    );
    assert.deepEqual(sampled(items, 0, rngFor('x')), []);
    const big = { names: [] as string[], images: Array.from({ length: 100_000 }, (_, i) => [`${i}/a`, `${i}/b`]) };
    const cfg = compilePKOptions({ P: 45, K: 2 });
    samplePK(big, cfg, 1, 0); // identities by size: once per index
    const t0 = performance.now();
    for (let step = 1; step <= 20; step++) assert.equal(samplePK(big, cfg, 1, step).identities.length, 45);
    const perStep = (performance.now() - t0) / 20;
    assert.ok(perStep < 2, `${perStep.toFixed(2)} ms a batch`); // a shuffle of every identity took 11-40 ms
  });

  it('keeps one-image identities out of the anchors but offers them as negatives', () => {
    const index = { names: ['a', 'b', 'c', 'd'], images: [['a1', 'a2'], ['b1', 'b2', 'b3'], ['c1'], ['d1']] };
    const batch = samplePK(index, compilePKOptions({ P: 4, K: 2, singletonNegatives: 1 }), 1, 0);
    assert.deepEqual([...batch.identities].sort(), [0, 1]);
    assert.equal(batch.items.filter((i) => i.identity >= 2).length, 1);
    assert.throws(
      () => compilePKOptions({ K: 1 }),
      (e: unknown) => e instanceof ConfigError && e.field === 'batch.K',
    );
  });

  it('holds out whole identities', () => {
    const src = new FolderSource(ORL);
    const s = splitHoldout(src.index, 10, 1);
    assert.equal(s.holdout.length, 10);
    assert.equal(s.train.length, 30);
    assert.ok(s.holdout.every((h) => !s.train.includes(h)));
  });

  it('renders the synthetic set deterministically, with identities that differ', async () => {
    const a = new SyntheticSource({ identities: 3, imagesPerIdentity: 2 });
    const b = new SyntheticSource({ identities: 3, imagesPerIdentity: 2 });
    const x = await a.read('synthetic:1:0', 40);
    assert.deepEqual(x.pixels, (await b.read('synthetic:1:0', 40)).pixels);
    const meanAbs = (p: Uint8Array, q: Uint8Array) => p.reduce((s, v, i) => s + Math.abs(v - q[i]!), 0) / p.length;
    const sameId = meanAbs(x.pixels, (await a.read('synthetic:1:1', 40)).pixels);
    assert.ok(sameId > 1, 'two captures of one identity differ');
    assert.ok(meanAbs(x.pixels, (await a.read('synthetic:2:0', 40)).pixels) > 1);
  });
});
