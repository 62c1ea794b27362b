import { MalformedStreamError } from '../errors';

/**
 * Framing of the raw TCP data plane (see DataEndpoint in proto/facenet/v1/allreduce.proto).
 *
 * Successor -> rank, once per connection: a hello, u32 little-endian length then that many
 * bytes of JSON {collective_id, to_rank, secret}. Rank -> successor: frames with a 16-byte
 * header of four u32 little-endian fields (type, a, b, length) and `length` payload bytes:
 *   DATA  (1): a = round, b = offset in elements, payload = little-endian float32s (or halves
 *              with fp16 compression, which both sides know from the job);
 *   END   (2): every round written; no payload;
 *   ERROR (3): a = gRPC status code, payload = UTF-8 reason.
 * The order of DATA frames is Pull's: round by round, each round's chunks by offset.
 */
export const FRAME_HEADER_BYTES = 16;
export const MAX_HELLO_BYTES = 4096;
const MAX_REASON_BYTES = 4096;

export enum FrameType {
  Data = 1,
  End = 2,
  Error = 3,
}

export interface Hello {
  collective_id: string;
  to_rank: number;
  secret: string;
}

export function frameHeader(type: FrameType, a: number, b: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  h.writeUInt32LE(type, 0);
  h.writeUInt32LE(a, 4);
  h.writeUInt32LE(b, 8);
  h.writeUInt32LE(length, 12);
  return h;
}

export function errorFrame(code: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, MAX_REASON_BYTES);
  return Buffer.concat([frameHeader(FrameType.Error, code, 0, text.length), text]);
}

export function encodeHello(hello: Hello): Buffer {
  const json = Buffer.from(JSON.stringify(hello), 'utf8');
  if (json.length > MAX_HELLO_BYTES) throw new Error(`hello of ${json.length} bytes exceeds ${MAX_HELLO_BYTES}`);
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32LE(json.length, 0);
  return Buffer.concat([len, json]);
}

/** Parses a hello, or says what is wrong with it. */
export function decodeHello(json: Buffer): Hello | string {
  let v: unknown;
  try {
    v = JSON.parse(json.toString('utf8'));
  } catch {
    return 'hello is not JSON';
  }
  const h = v as Partial<Hello> | null;
  if (typeof h?.collective_id !== 'string' || h.collective_id.length === 0) return 'hello lacks collective_id';
  if (!Number.isInteger(h.to_rank) || (h.to_rank as number) < 0) return 'hello lacks a to_rank';
  if (typeof h.secret !== 'string') return 'hello lacks a secret';
  return { collective_id: h.collective_id, to_rank: h.to_rank as number, secret: h.secret };
}

/** What a FrameReader hands on. `bytes` of `data` is valid only during the call (buffers are reused). */
export interface FrameSink {
  data(round: number, offset: number, bytes: Buffer): void;
  end(): void;
  error(code: number, reason: string): void;
}

/**
 * Incremental parser of the rank -> successor byte stream. Reads may split headers and even
 * single elements; payloads are handed on as whole elements without copying, except the one
 * element a read boundary splits. Throws on a malformed stream.
 */
export class FrameReader {
  private state: 'header' | 'data' | 'reason' | 'done' = 'header';
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private round = 0;
  private offset = 0;
  private remaining = 0;
  private readonly carry = Buffer.alloc(4);
  private carryFill = 0;
  private code = 0;
  private reason: Buffer[] = [];

  /** `elementBytes`: 4 for float32 payloads, 2 for fp16. */
  constructor(
    private readonly sink: FrameSink,
    private readonly elementBytes = 4,
  ) {}

  push(buf: Buffer): void {
    let pos = 0;
    while (pos < buf.length && this.state !== 'done') {
      if (this.state === 'header') pos = this.readHeader(buf, pos);
      else if (this.state === 'data') pos = this.readData(buf, pos);
      else pos = this.readReason(buf, pos);
    }
    if (pos < buf.length) throw new MalformedStreamError(`${buf.length - pos} bytes after the end of the stream`);
  }

  private readHeader(buf: Buffer, pos: number): number {
    const n = Math.min(FRAME_HEADER_BYTES - this.headerFill, buf.length - pos);
    buf.copy(this.header, this.headerFill, pos, pos + n);
    this.headerFill += n;
    if (this.headerFill < FRAME_HEADER_BYTES) return pos + n;
    this.headerFill = 0;
    const type = this.header.readUInt32LE(0);
    const length = this.header.readUInt32LE(12);
    if (type === FrameType.Data) {
      if (length % this.elementBytes !== 0)
        throw new MalformedStreamError(`DATA frame of ${length} bytes is not whole ${this.elementBytes}-byte elements`);
      this.round = this.header.readUInt32LE(4);
      this.offset = this.header.readUInt32LE(8);
      this.remaining = length;
      this.state = length > 0 ? 'data' : 'header';
    } else if (type === FrameType.End) {
      this.state = 'done';
      this.sink.end();
    } else if (type === FrameType.Error) {
      if (length > MAX_REASON_BYTES) throw new MalformedStreamError(`ERROR frame reason of ${length} bytes`);
      this.code = this.header.readUInt32LE(4);
      this.remaining = length;
      this.reason = [];
      this.state = 'reason';
      if (length === 0) this.finishError();
    } else {
      throw new MalformedStreamError(`unknown frame type ${type}`);
    }
    return pos + n;
  }

  private readData(buf: Buffer, pos: number): number {
    const width = this.elementBytes;
    if (this.carryFill > 0) {
      const n = Math.min(width - this.carryFill, buf.length - pos);
      buf.copy(this.carry, this.carryFill, pos, pos + n);
      this.carryFill += n;
      this.remaining -= n;
      pos += n;
      if (this.carryFill === width) {
        this.carryFill = 0;
        this.sink.data(this.round, this.offset, this.carry.subarray(0, width));
        this.offset += 1;
      }
    } else {
      const avail = Math.min(this.remaining, buf.length - pos);
      const whole = avail - (avail % width);
      if (whole > 0) {
        this.sink.data(this.round, this.offset, buf.subarray(pos, pos + whole));
        this.offset += whole / width;
      }
      const rest = avail - whole;
      buf.copy(this.carry, 0, pos + whole, pos + avail);
      this.carryFill = rest;
      this.remaining -= avail;
      pos += avail;
    }
    if (this.remaining === 0) this.state = 'header';
    return pos;
  }

  private readReason(buf: Buffer, pos: number): number {
    const n = Math.min(this.remaining, buf.length - pos);
    this.reason.push(Buffer.from(buf.subarray(pos, pos + n)));
    this.remaining -= n;
    if (this.remaining === 0) this.finishError();
    return pos + n;
  }

  private finishError(): void {
    this.state = 'done';
    this.sink.error(this.code, Buffer.concat(this.reason).toString('utf8'));
  }
}
