import { strict as assert } from 'node:assert';
import { decodeHalves, encodeHalves, errorFrame, FrameReader, frameHeader, FrameType, roundToHalf } from '@facenet/worker';

/** A rank's byte stream: two rounds of DATA frames (two chunks each), then END. */
function stream(values: Float32Array): Buffer {
  const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const half = (values.length / 2) * 4;
  const parts: Buffer[] = [];
  for (const [round, from, to] of [
    [0, 0, half],
    [1, half, bytes.length],
  ] as const) {
    const mid = from + Math.floor((to - from) / 8) * 4;
    parts.push(frameHeader(FrameType.Data, round, 0, mid - from), bytes.subarray(from, mid));
    parts.push(frameHeader(FrameType.Data, round, (mid - from) / 4, to - mid), bytes.subarray(mid, to));
  }
  parts.push(frameHeader(FrameType.End, 0, 0, 0));
  return Buffer.concat(parts);
}

/** Feeds `wire` in pieces cut at `cuts`; returns what the reader handed on. */
function read(wire: Buffer, cuts: number[]) {
  const rounds = new Map<number, number[]>();
  const events: string[] = [];
  const reader = new FrameReader({
    data: (round, offset, bytes) => {
      const r = rounds.get(round) ?? [];
      const floats = new Float32Array(Uint8Array.from(bytes).buffer);
      floats.forEach((v, i) => (r[offset + i] = v));
      rounds.set(round, r);
    },
    end: () => events.push('end'),
    error: (code, reason) => events.push(`error ${code} ${reason}`),
  });
  let at = 0;
  for (const cut of [...cuts, wire.length]) {
    reader.push(wire.subarray(at, cut));
    at = cut;
  }
  return { rounds, events };
}

describe('TCP data-plane frames', () => {
  const values = Float32Array.from({ length: 22 }, (_, i) => i * 1.5 - 7.25);
  const wire = stream(values);

  it('reassembles every float wherever reads split the stream (headers and floats included)', () => {
    for (let cut = 1; cut < wire.length; cut++) {
      const { rounds, events } = read(wire, [cut]);
      assert.deepEqual(events, ['end'], `cut at ${cut}`);
      assert.deepEqual([...(rounds.get(0) ?? []), ...(rounds.get(1) ?? [])], [...values], `cut at ${cut}`);
    }
    const bytewise = read(
      wire,
      Array.from({ length: wire.length - 1 }, (_, i) => i + 1),
    );
    assert.deepEqual([...(bytewise.rounds.get(0) ?? []), ...(bytewise.rounds.get(1) ?? [])], [...values]);
  });

  it('reports an ERROR frame with its code and reason, split or whole', () => {
    const frame = errorFrame(7, "collective x: not this rank's successor");
    for (const cuts of [[], [3], [17, 20]]) assert.deepEqual(read(frame, cuts).events, ["error 7 collective x: not this rank's successor"]);
  });

  it('rejects a malformed stream: an unknown frame type, a DATA frame of partial floats, bytes after END', () => {
    assert.throws(() => read(frameHeader(9 as FrameType, 0, 0, 0), []), /unknown frame type 9/);
    assert.throws(() => read(frameHeader(FrameType.Data, 0, 0, 6), []), /not whole 4-byte elements/);
    assert.throws(() => read(Buffer.concat([frameHeader(FrameType.End, 0, 0, 0), Buffer.from([1])]), []), /after the end/);
  });
});

describe('fp16 on the wire', () => {
  const halves = (xs: number[]) => [...decodeHalves(encodeHalves(Float32Array.from(xs), 0, xs.length), new Float32Array(xs.length))];

  it('encodes exact values exactly, rounds to nearest even, saturates to infinity, keeps NaN and signed zero', () => {
    assert.deepEqual(halves([0, 1, -2, 0.5, 65504, 2 ** -24, -(2 ** -14)]), [0, 1, -2, 0.5, 65504, 2 ** -24, -(2 ** -14)]);
    assert.deepEqual(halves([1 + 2 ** -11, 1 + 3 * 2 ** -11]), [1, 1 + 2 * 2 ** -10]); // ties go to the even mantissa
    assert.deepEqual(halves([65520, -1e6, Infinity]), [Infinity, -Infinity, Infinity]);
    assert.ok(Number.isNaN(halves([NaN])[0]));
    assert.ok(Object.is(halves([-0])[0], -0));
    assert.deepEqual(halves([2 ** -26]), [0]);
  });

  it('keeps every normal value within half a unit in the last place (relative 2^-11)', () => {
    let s = 7;
    const xs = Array.from({ length: 20000 }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648 - 0.5) * 2 ** ((s % 30) - 14));
    const ys = halves(xs);
    xs.forEach((x, i) => assert.ok(Math.abs(ys[i]! - x) <= Math.abs(x) * 2 ** -11 + 2 ** -25, `${x} -> ${ys[i]}`));
  });

  it('rounding in place is what a peer decodes, and idempotent', () => {
    const xs = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
    const sent = halves([...xs]);
    roundToHalf(xs, 0, xs.length);
    assert.deepEqual([...xs], sent);
    roundToHalf(xs, 0, xs.length);
    assert.deepEqual([...xs], sent);
  });
});
