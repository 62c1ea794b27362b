import { strict as assert } from 'node:assert';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  compilePKOptions,
  DatasetError,
  FolderSource,
  ImageDecodeError,
  ManifestSource,
  PackedIndexBuilder,
  packIndex,
  packManifest,
  packPeopleFolder,
  samplePK,
  scanPeopleFolderAsync,
  splitHoldout,
  unpackIndex,
} from '@facenet/core';
import { datasetKind, parseJobSpec, sourceFromSpec } from '@facenet/protocol';
import { LFW, ORL, tempDir } from '../helpers';
import { needLfw } from '../requirements';

/** An index's lists as plain arrays (a packed index builds them when read). */
const plain = (index: { names: string[]; images: string[][] }) => ({
  names: [...index.names],
  images: [...index.images].map((i) => [...i]),
});

describe('packed dataset indexes', () => {
  it('a folder packed and unpacked is the scanned folder, key for key, and samples the same batches', async () => {
    const packed = await packPeopleFolder(ORL);
    const unpacked = unpackIndex(packed, join(ORL, '/'));
    const scanned = await scanPeopleFolderAsync(ORL);
    assert.deepEqual(plain(unpacked), plain(scanned));
    assert.deepEqual(
      [...unpacked.sizes],
      scanned.images.map((i) => i.length),
    );
    const pk = compilePKOptions({ P: 6, K: 4 });
    for (const step of [0, 1, 7]) assert.deepEqual(samplePK(unpacked, pk, 3, step), samplePK(scanned, pk, 3, step));
    assert.deepEqual(splitHoldout(unpacked, 5, 9), splitHoldout(scanned, 5, 9));
  });

  it('packs LFW in at most 64 bytes an image', async function () {
    needLfw(this);
    this.timeout(60_000);
    const packed = await packPeopleFolder(join(LFW, 'images'));
    const index = unpackIndex(packed);
    const images = [...index.sizes].reduce((a, b) => a + b, 0);
    assert.equal(images, 11_622);
    assert.ok(packed.length / images <= 64, `${(packed.length / images).toFixed(1)} bytes an image`);
  });

  it('groups keys by identity in order of first appearance, keeping each identity order; names are UTF-8', () => {
    const b = new PackedIndexBuilder();
    b.add('Zoë', 'z/1.jpg');
    b.add('Åsa', 'a/1.jpg');
    b.add('Zoë', 'z/2.jpg');
    b.add('Åsa', 'a/0.jpg');
    b.add('Zoë', 'z/ü.jpg');
    const index = unpackIndex(b.finish(), '/d/');
    assert.deepEqual(plain(index), {
      names: ['Zoë', 'Åsa'],
      images: [
        ['/d/z/1.jpg', '/d/z/2.jpg', '/d/z/ü.jpg'],
        ['/d/a/1.jpg', '/d/a/0.jpg'],
      ],
    });
  });

  it('reads a packed index at any byte offset, and refuses a truncated or foreign buffer', () => {
    const packed = packIndex({ names: ['a', 'b'], images: [['a/1.png', 'a/2.png'], ['b/1.png']] });
    const shifted = Buffer.alloc(packed.length + 1);
    packed.copy(shifted, 1);
    assert.deepEqual(plain(unpackIndex(shifted.subarray(1))), { names: ['a', 'b'], images: [['a/1.png', 'a/2.png'], ['b/1.png']] });
    assert.throws(
      () => unpackIndex(packed.subarray(0, packed.length - 3)),
      (e: unknown) => e instanceof DatasetError && /truncated/.test(e.message),
    );
    assert.throws(
      () => unpackIndex(Buffer.from('not an index at all')),
      (e: unknown) => e instanceof DatasetError && /magic/.test(e.message),
    );
  });

  it('a folder source on a packed index opens its own images and refuses any other path', async () => {
    const t = tempDir();
    try {
      for (const id of ['s1', 's2']) {
        mkdirSync(join(t.dir, 'data', id), { recursive: true });
        for (const n of [1, 2]) copyFileSync(join(ORL, id, `${n}.pgm`), join(t.dir, 'data', id, `${n}.pgm`));
      }
      copyFileSync(join(ORL, 's3', '1.pgm'), join(t.dir, 'outside.pgm'));
      const root = join(t.dir, 'data');
      const src = new FolderSource(root, { index: unpackIndex(await packPeopleFolder(root), join(root, '/')) });
      assert.equal((await src.read(join(root, 's2', '2.pgm'), 16)).side, 16);
      for (const forged of [join(t.dir, 'outside.pgm'), join(root, 's1', '..', '..', 'outside.pgm'), join(root, 's1', '3.pgm')])
        await assert.rejects(
          src.read(forged, 16),
          (e: unknown) => e instanceof ImageDecodeError && /not an image of this dataset/.test(e.message),
        );
    } finally {
      t.cleanup();
    }
  });
});

describe('manifest datasets', () => {
  function orlManifest(dir: string, name: string, body: string): string {
    mkdirSync(join(dir, 'faces', 's1'), { recursive: true });
    mkdirSync(join(dir, 'faces', 's2'), { recursive: true });
    for (const [id, n] of [
      ['s1', 1],
      ['s1', 2],
      ['s2', 1],
      ['s2', 2],
    ] as const)
      copyFileSync(join(ORL, id, `${n}.pgm`), join(dir, 'faces', id, `${n}.pgm`));
    writeFileSync(join(dir, name), body);
    return join(dir, name);
  }

  it('reads CSV (header names the columns, quoted fields) and JSON Lines to the same index', async () => {
    const t = tempDir();
    try {
      const csv = orlManifest(
        t.dir,
        'm.csv',
        'identity,path,note\n"Smith, Anne",faces/s1/1.pgm,x\n"Smith, Anne",faces/s1/2.pgm,\nBob,faces/s2/1.pgm,y\nBob,./faces/s2/2.pgm,\n',
      );
      const jsonl = join(t.dir, 'm.jsonl');
      writeFileSync(
        jsonl,
        [
          { path: 'faces/s1/1.pgm', identity: 'Smith, Anne' },
          { path: 'faces/s1/2.pgm', identity: 'Smith, Anne' },
          { path: 'faces/s2/1.pgm', identity: 'Bob' },
          { path: 'faces/s2/2.pgm', identity: 'Bob' },
        ]
          .map((r) => JSON.stringify(r))
          .join('\n') + '\n\n',
      );
      const fromCsv = unpackIndex(await packManifest(csv), ManifestSource.keyPrefix(csv));
      const fromJsonl = unpackIndex(await packManifest(jsonl), ManifestSource.keyPrefix(jsonl));
      assert.deepEqual(plain(fromCsv), plain(fromJsonl));
      assert.deepEqual(plain(fromCsv).names, ['Smith, Anne', 'Bob']);
      const src = new ManifestSource(csv, fromCsv, { exclude: ['Bob'] });
      assert.deepEqual([...src.index.names], ['Smith, Anne']);
      assert.equal((await src.read(src.index.images[0]![1]!, 24)).pixels.length, 24 * 24 * 3);
    } finally {
      t.cleanup();
    }
  });

  it('names the row of a path that leaves its folder, an absolute path, a missing identity, a non-image or bad JSON', async () => {
    const t = tempDir();
    try {
      const cases: [string, string, RegExp][] = [
        ['a.csv', 'path,identity\nfaces/s1/1.pgm,a\n../etc/x.jpg,a\n', /^row 2: \.\.\/etc\/x\.jpg is not a path inside/],
        ['b.csv', 'path,identity\n/etc/x.jpg,a\n', /^row 1: \/etc\/x\.jpg is not a path inside/],
        ['c.csv', 'path,identity\nfaces/s1/1.pgm,\n', /^row 1: no identity/],
        ['d.csv', 'path,identity\nfaces/s1/1.txt,a\n', /^row 1: .*not an image file/],
        ['e.jsonl', '{"path":"faces/s1/1.pgm","identity":"a"}\n{"path":\n', /^line 2: not a JSON object/],
        ['f.txt', 'x', /a manifest is \.csv, \.jsonl or \.ndjson/],
        ['g.csv', 'path,identity\n', /lists no images/],
      ];
      for (const [name, body, re] of cases) {
        const file = orlManifest(t.dir, name, body);
        await assert.rejects(packManifest(file), (e: unknown) => e instanceof DatasetError && re.test(e.message), name);
      }
      await assert.rejects(packManifest(join(t.dir, 'none.csv')), (e: unknown) => e instanceof DatasetError && /ENOENT/.test(e.message));
    } finally {
      t.cleanup();
    }
  });

  it('refuses a listed image whose link leads out of the manifest folder, and reports a missing one like a corrupt one', async () => {
    const t = tempDir();
    const elsewhere = tempDir();
    try {
      const file = orlManifest(t.dir, 'm.csv', 'path,identity\nfaces/s1/1.pgm,a\nfaces/s1/link.pgm,a\nfaces/s1/gone.pgm,a\n');
      copyFileSync(join(ORL, 's3', '1.pgm'), join(elsewhere.dir, 'outside.pgm'));
      symlinkSync(join(elsewhere.dir, 'outside.pgm'), join(t.dir, 'faces', 's1', 'link.pgm'));
      const src = new ManifestSource(file, unpackIndex(await packManifest(file), ManifestSource.keyPrefix(file)));
      const [ok, link, gone] = src.index.images[0]!;
      assert.equal((await src.read(ok!, 8)).side, 8);
      await assert.rejects(
        src.read(link!, 8),
        (e: unknown) => e instanceof ImageDecodeError && /not an image of this dataset/.test(e.message),
      );
      await assert.rejects(src.read(gone!, 8), (e: unknown) => e instanceof ImageDecodeError && /ENOENT/.test(e.message));
    } finally {
      t.cleanup();
      elsewhere.cleanup();
    }
  });
});

describe('dataset kinds', () => {
  const specs = [
    { kind: 'synthetic', identities: 10 },
    { kind: 'folder', path: ORL },
    { kind: 'manifest', path: '/data/m.csv', cropFraction: 0.5 },
  ];

  it('every kind parses as a job spec dataset and answers for its files and crop', () => {
    for (const d of specs) {
      const spec = parseJobSpec({ dataset: d }).dataset;
      const kind = datasetKind(spec);
      assert.equal(kind.kind, d.kind);
      assert.deepEqual(
        kind.files(spec).map((f) => f.value),
        'path' in d ? [d.path] : [],
      );
      assert.equal(kind.cropFraction(spec), d.kind === 'manifest' ? 0.5 : 1);
    }
    assert.throws(() => parseJobSpec({ dataset: { kind: 'tarball', path: 'x' } }), /dataset/);
  });

  it('a manifest job without a stored index is refused rather than read on a service thread', () => {
    const spec = parseJobSpec({ dataset: specs[2] }).dataset;
    assert.throws(
      () => sourceFromSpec(spec),
      (e: unknown) => e instanceof DatasetError && /no stored index/.test(e.message),
    );
  });
});
