import { strict as assert } from 'node:assert';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  CheckpointError,
  ConfigError,
  DatasetError,
  EmbeddingModel,
  exportModel,
  ImageDecodeError,
  InferenceError,
  loadModel,
  objectStoreFor,
  packIndex,
  packManifest,
  packShardIndex,
  readExportMetadata,
  readTfjsExport,
  ShardsSource,
  unpackIndex,
  writeCheckpoint,
} from '@facenet/core';
import { expectTypedOrValid, expectTypedOrValidAsync, FUZZ, hostileJsonText } from '../fuzz';
import { tempDir, useBackend } from '../helpers';

/**
 * Files and stored bytes from outside: packed dataset indexes (Redis), shard index.jsonl and
 * members, manifests (CSV and JSON Lines), checkpoint manifests, export folders. Each is fuzzed
 * from a valid one, mutated, and from noise: a typed error or a valid value, nothing else.
 * File-backed cases run a third of the budget (each writes a file).
 */
const FILE_RUNS = { ...FUZZ, numRuns: Math.max(30, Math.round(FUZZ.numRuns / 3)) };

describe('fuzz: dataset indexes, manifests, checkpoints and exports (seeded)', function () {
  this.timeout(300_000);
  let t: ReturnType<typeof tempDir>;
  before(() => (t = tempDir('facenet-fuzz-')));
  after(() => t.cleanup());

  it('a packed index read back from Redis unpacks consistently or is refused with DatasetError', () => {
    const valid = packIndex({
      names: ['ann', 'bob', 'cy'],
      images: [['a/1.jpg', 'a/2.jpg'], ['b/1.jpg'], ['c/1.jpg', 'c/2.jpg', 'c/3.jpg']],
    });
    const corrupted = fc
      .array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 })
      .map((edits) => {
        const b = Buffer.from(valid);
        for (const [at, byte] of edits) b[at] = byte;
        return b;
      });
    const header = fc.jsonValue().map((h) => {
      const json = Buffer.from(JSON.stringify(h));
      const b = Buffer.alloc(8 + json.length + 64);
      b.write('FNX1', 0, 'latin1');
      b.writeUInt32LE(json.length, 4);
      json.copy(b, 8);
      return b;
    });
    const bytes = fc.oneof(
      corrupted,
      header,
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      fc.nat({ max: valid.length }).map((n) => valid.subarray(0, n)),
    );
    // Found by this fuzz: identity tables out of order made a size wrap to 2^32 - 1 with no images.
    const foundStartsOutOfOrder = Buffer.from(valid);
    foundStartsOutOfOrder.writeUInt32LE(3, 8 + foundStartsOutOfOrder.readUInt32LE(4)); // starts[0] = 3 > starts[1]
    fc.assert(
      fc.property(bytes, (b) =>
        expectTypedOrValid(
          () => unpackIndex(b),
          [DatasetError],
          (index) => {
            // Every identity's images are listed, as many as its size says.
            let total = 0;
            for (let i = 0; i < index.names.length; i++) {
              assert.equal(typeof index.names[i], 'string');
              assert.equal((index.images[i] as string[]).length, index.sizes[i]);
              total += index.sizes[i] as number;
            }
            assert.ok(total <= b.length, `${total} images from ${b.length} bytes`);
          },
        ),
      ),
      { ...FUZZ, examples: [[foundStartsOutOfOrder], [Buffer.from('FNX1\x04\x00\x00\x00null', 'latin1')]] },
    );
  });

  it("a shard set's index.jsonl packs or is refused with DatasetError naming the line", async () => {
    const line = { identity: 'ann', shard: 0, offset: 512, size: 1000, ext: 'jpg' };
    const lines = fc.array(
      fc.oneof({ weight: 3, arbitrary: fc.constant(JSON.stringify(line)) }, { weight: 2, arbitrary: hostileJsonText(line) }),
      {
        minLength: 1,
        maxLength: 5,
      },
    );
    let n = 0;
    await fc.assert(
      fc.asyncProperty(lines, async (texts) => {
        const dir = join(t.dir, `shards-${n++}`);
        mkdirSync(dir);
        writeFileSync(join(dir, 'index.jsonl'), texts.join('\n'));
        await expectTypedOrValidAsync(
          () => packShardIndex(objectStoreFor(dir, null)),
          [DatasetError],
          (packed) => assert.ok(unpackIndex(packed).names.length >= 1),
        );
      }),
      // Found by this fuzz: a line `null` (a TypeError, not the line's DatasetError).
      { ...FILE_RUNS, examples: [[['null', JSON.stringify(line)]]] },
    );
  });

  it('a shard member read under any key is an image or an ImageDecodeError (skipped and counted), never a crash', async () => {
    const dir = join(t.dir, 'members');
    mkdirSync(dir);
    writeFileSync(join(dir, 'shard-00000.tar'), Buffer.alloc(4096, 0x41));
    const store = objectStoreFor(dir, null);
    const source = new ShardsSource(store, { names: ['ann'], images: [['0:0:100:jpg']] });
    const key = fc.oneof(
      fc.string(),
      fc
        .tuple(
          fc.nat({ max: 100_001 }),
          fc.constantFrom(0, 4000, 4096, 2 ** 40, 2 ** 48),
          fc.constantFrom(0, 1, 100, 2 ** 26, 2 ** 31),
          fc.constantFrom('jpg', 'pgm', 'png', 'xx'),
        )
        .map(([s, o, z, e]) => `${s}:${o}:${z}:${e}`),
    );
    await fc.assert(
      fc.asyncProperty(key, async (k) => expectTypedOrValidAsync(() => source.read(k, 16), [ImageDecodeError])),
      FILE_RUNS,
    );
  });

  for (const form of ['csv', 'jsonl'] as const)
    it(`a ${form} manifest packs, every path inside its folder, or is refused with DatasetError`, async () => {
      const row = fc.oneof(
        fc.constantFrom('ann/1.jpg', 'bob/2.png', '../x.jpg', '/etc/passwd.jpg', 'a/../../b.jpg', 'c/d.txt', '', 'a\u0000b.jpg'),
        fc.string(),
      );
      const rows = fc.array(fc.tuple(row, fc.oneof(fc.constantFrom('ann', 'bob', ''), fc.string())), { minLength: 0, maxLength: 5 });
      const text = fc.oneof(
        rows.map((rs) =>
          form === 'csv'
            ? ['path,identity', ...rs.map(([p, id]) => `"${p.replace(/"/g, '""')}",${JSON.stringify(id)}`)].join('\n')
            : rs.map(([p, id]) => JSON.stringify({ path: p, identity: id })).join('\n'),
        ),
        fc.string(),
        fc.jsonValue().map((v) => JSON.stringify(v)),
      );
      let n = 0;
      await fc.assert(
        fc.asyncProperty(text, async (body) => {
          const file = join(t.dir, `manifest-${form}-${n++}.${form}`);
          writeFileSync(file, body);
          await expectTypedOrValidAsync(
            () => packManifest(file),
            [DatasetError],
            (packed) => {
              const index = unpackIndex(packed);
              for (const images of index.images)
                for (const p of images) assert.ok(!p.startsWith('/') && !p.split('/').includes('..'), `${p} escapes the folder`);
            },
          );
        }),
        FILE_RUNS,
      );
    });

  it('a checkpoint whose manifest.json is hostile loads or is refused with CheckpointError or ConfigError', async () => {
    await useBackend();
    const model = new EmbeddingModel({ architecture: 'tiny', imageSize: 16, embeddingDim: 8, seed: 3 });
    const good = join(t.dir, 'ckpt-good');
    await writeCheckpoint(good, model, undefined, { step: 2, seed: 3 });
    model.dispose();
    const manifest = JSON.parse(readFileSync(join(good, 'manifest.json'), 'utf8')) as unknown;
    let n = 0;
    await fc.assert(
      fc.asyncProperty(hostileJsonText(manifest), async (text) => {
        const dir = join(t.dir, `ckpt-${n++}`);
        cpSync(good, dir, { recursive: true });
        writeFileSync(join(dir, 'manifest.json'), text);
        await expectTypedOrValidAsync(
          () => loadModel(dir),
          [CheckpointError, ConfigError],
          (loaded) => loaded.model.dispose(),
        );
      }),
      // Found by this fuzz: a manifest.json of `null`.
      { ...FILE_RUNS, examples: [['null'], ['[]']] },
    );
  });

  it('an export folder with a hostile facenet.json or model.json is refused with InferenceError before anything loads', async () => {
    await useBackend();
    const model = new EmbeddingModel({ architecture: 'tiny', imageSize: 16, embeddingDim: 8, seed: 3 });
    const ckpt = join(t.dir, 'export-src');
    const manifest = await writeCheckpoint(ckpt, model, undefined, { step: 2, seed: 3 });
    const good = join(t.dir, 'export-good');
    await exportModel(model, manifest, 'tfjs', good);
    model.dispose();
    const metadata = JSON.parse(readFileSync(join(good, 'facenet.json'), 'utf8')) as unknown;
    const modelJson = JSON.parse(readFileSync(join(good, 'model.json'), 'utf8')) as { modelTopology: unknown };
    // The topology is TensorFlow.js's to parse; the fuzz aims at the parts facenet reads.
    const small = { ...modelJson, modelTopology: {} };
    await readExportMetadata(good);
    await readTfjsExport(good);
    let n = 0;
    await fc.assert(
      fc.asyncProperty(hostileJsonText(metadata), hostileJsonText(small), async (meta, json) => {
        const dir = join(t.dir, `export-${n++}`);
        cpSync(good, dir, { recursive: true });
        writeFileSync(join(dir, 'facenet.json'), meta);
        writeFileSync(join(dir, 'model.json'), json);
        await expectTypedOrValidAsync(
          () => readExportMetadata(dir),
          [InferenceError],
          (m) => {
            assert.ok(Number.isInteger(m.model.imageSize) && m.model.imageSize >= 8 && m.model.imageSize <= 1024);
          },
        );
        await expectTypedOrValidAsync(
          () => readTfjsExport(dir),
          [InferenceError],
          (files) => {
            assert.equal(
              files.weightData.byteLength,
              readFileSync(join(good, (modelJson as never as { weightsManifest: { paths: string[] }[] }).weightsManifest[0]!.paths[0]!))
                .length,
            );
          },
        );
      }),
      FILE_RUNS,
    );
  });

  it('an export naming a weights file outside its folder is refused', async () => {
    const dir = join(t.dir, 'export-good');
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
    const evil = join(t.dir, 'export-evil');
    cpSync(dir, evil, { recursive: true });
    json.weightsManifest[0]!.paths = ['../export-good/weights.bin'];
    writeFileSync(join(evil, 'model.json'), JSON.stringify(json));
    await assert.rejects(
      readTfjsExport(evil),
      (err: Error) => err instanceof InferenceError && /must name a file beside model.json/.test(err.message),
    );
  });
});
