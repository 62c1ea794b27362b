import { strict as assert } from 'node:assert';
import { errorFrame, FrameReader, frameHeader, FrameType } from '@facenet/worker';

/** A rank's byte stream: two rounds of DATA frames (two chunks each), then END. */
function stream(values: Float32Array): Buffer {
  const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const half = (values.length / 2) * 4;
  const parts: Buffer[] = [];
  for (const [round, from, to] of [[0, 0, half], [1, half, bytes.length]] as const) {
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
    const bytewise = read(wire, Array.from({ length: wire.length - 1 }, (_, i) => i + 1));
    assert.deepEqual([...(bytewise.rounds.get(0) ?? []), ...(bytewise.rounds.get(1) ?? [])], [...values]);
  });

  it('reports an ERROR frame with its code and reason, split or whole', () => {
    const frame = errorFrame(7, 'collective x: not this rank\'s successor');
    for (const cuts of [[], [3], [17, 20]]) assert.deepEqual(read(frame, cuts).events, ['error 7 collective x: not this rank\'s successor']);
  });

  it('rejects a malformed stream: an unknown frame type, a DATA frame of partial floats, bytes after END', () => {
    assert.throws(() => read(frameHeader(9 as FrameType, 0, 0, 0), []), /unknown frame type 9/);
    assert.throws(() => read(frameHeader(FrameType.Data, 0, 0, 6), []), /not whole float32s/);
    assert.throws(() => read(Buffer.concat([frameHeader(FrameType.End, 0, 0, 0), Buffer.from([1])]), []), /after the end/);
  });
});
