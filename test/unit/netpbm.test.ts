import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { decodeNetpbm, decodeSquareBytes, ImageDecodeError } from '@facenet/core';

/** Fixed seed and run count: the fuzzing is repeatable in CI, and a found case prints its seed and path. */
const FUZZ = { seed: 20261207, numRuns: 400 };

const encode = (magic: string, w: number, h: number, maxval: number, samples: number[]): Buffer => {
  const header = Buffer.from(`${magic}\n# made by a test\n${w} ${h}\n${maxval}\n`, 'latin1');
  if (magic === 'P2' || magic === 'P3') return Buffer.concat([header, Buffer.from(samples.join(' '), 'latin1')]);
  if (maxval < 256) return Buffer.concat([header, Buffer.from(samples)]);
  const b = Buffer.alloc(samples.length * 2);
  samples.forEach((v, i) => b.writeUInt16BE(v, 2 * i));
  return Buffer.concat([header, b]);
};

describe('PGM/PPM decoding of hostile input', () => {
  // 32 twenty-byte uploads claiming 65535 x 65535 once took 6-15 s to refuse (each allocated 4 GB
  // before checking the data length) and held `facenet serve`'s /healthz for seconds.
  it('a header claiming more than the bytes present is refused before any allocation', () => {
    for (const forged of ['P5 65535 65535 255\n', 'P6 65535 65535 65535\n', 'P2 65535 65535 255\n1 2 3', 'P5 4294967295 1 255\n']) {
      const before = process.memoryUsage().arrayBuffers;
      assert.throws(() => decodeNetpbm('upload', Buffer.from(forged, 'latin1')), ImageDecodeError, forged);
      assert.ok(process.memoryUsage().arrayBuffers - before < 2 ** 20, `${forged}: allocated before refusing`);
    }
    assert.throws(() => decodeNetpbm('upload', Buffer.from('P5 5000 5000 255\n'), 1000), /at most 1000/);
  });

  it('any bytes behind a PGM/PPM magic decode to a valid image or a clear ImageDecodeError', () => {
    const magic = fc.constantFrom('P2', 'P3', 'P5', 'P6');
    const headerish = fc.stringMatching(/^[ \n#0-9]{0,40}$/);
    fc.assert(
      fc.property(magic, headerish, fc.uint8Array({ maxLength: 300 }), (m, header, tail) => {
        const buf = Buffer.concat([Buffer.from(m + header, 'latin1'), tail]);
        try {
          const img = decodeNetpbm('fuzz', buf);
          assert.equal(img.data.length, img.width * img.height * img.channels);
          assert.ok(img.data.length <= buf.length, 'more samples than input bytes');
        } catch (err) {
          if (!(err instanceof ImageDecodeError)) throw err;
        }
      }),
      FUZZ,
    );
  });

  it('every well-formed image reads back exactly, in all four formats and both sample widths', () => {
    const image = fc
      .record({ w: fc.integer({ min: 1, max: 9 }), h: fc.integer({ min: 1, max: 9 }), maxval: fc.constantFrom(1, 15, 255, 1000, 65535) })
      .chain((d) =>
        fc.record({
          d: fc.constant(d),
          magic: fc.constantFrom('P2', 'P3', 'P5', 'P6'),
          seed: fc.array(fc.integer({ min: 0, max: d.maxval }), { minLength: d.w * d.h * 3, maxLength: d.w * d.h * 3 }),
        }),
      );
    fc.assert(
      fc.property(image, ({ d, magic, seed }) => {
        const channels = magic === 'P3' || magic === 'P6' ? 3 : 1;
        const samples = seed.slice(0, d.w * d.h * channels);
        const img = decodeNetpbm('roundtrip', encode(magic, d.w, d.h, d.maxval, samples));
        assert.deepEqual([img.width, img.height, img.channels], [d.w, d.h, channels]);
        assert.deepEqual(
          [...img.data],
          samples.map((v) => Math.round((v * 255) / d.maxval)),
        );
      }),
      FUZZ,
    );
  });

  it('an upload recognised by content goes through the same bounded reader', async () => {
    await assert.rejects(decodeSquareBytes(Buffer.from('P5 65535 65535 255\n'), 'upload', 16), ImageDecodeError);
    const ok = await decodeSquareBytes(
      encode(
        'P5',
        4,
        4,
        255,
        Array.from({ length: 16 }, (_, i) => i * 16),
      ),
      'upload',
      4,
    );
    assert.equal(ok.pixels.length, 4 * 4 * 3);
  });
});

describe('PGM/PPM uploads off the event loop', () => {
  it('a 4 MB ASCII PGM decodes on its own thread to the same pixels, and a forged one fails there with the reason', async () => {
    const w = 1000;
    const values = Array.from({ length: w * w }, (_, i) => (i * 7) % 256);
    const big = Buffer.from(`P2 ${w} ${w} 255\n${values.join(' ')}`, 'latin1');
    assert.ok(big.length > 64 * 1024);
    const square = await decodeSquareBytes(big, 'upload', 8);
    const inline = decodeNetpbm('upload', big);
    assert.deepEqual([...inline.data.subarray(0, 5)], [0, 7, 14, 21, 28]);
    assert.equal(square.pixels.length, 8 * 8 * 3);
    const bad = Buffer.concat([Buffer.from(`P2 ${w} ${w} 255\n`), Buffer.alloc(2 * w * w, 0x41)]);
    await assert.rejects(
      decodeSquareBytes(bad, 'upload', 8),
      (e: unknown) => e instanceof ImageDecodeError && /^cannot decode upload: value 1 is not a sample$/.test(e.message),
    );
  });
});
