import { ImageDecodeError } from '../errors';

/** The most pixels an image may have before anything is allocated for it: libvips' own default limit. */
export const MAX_NETPBM_PIXELS = 2 ** 28;

export interface NetpbmImage {
  width: number;
  height: number;
  channels: 1 | 3;
  /** 8-bit samples; a view of the input itself when it holds 8-bit samples at maxval 255 (no copy). */
  data: Uint8Array;
}

const isSpace = (c: number | undefined) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x0b || c === 0x0c;
const isDigit = (c: number | undefined) => c !== undefined && c >= 0x30 && c <= 0x39;

/**
 * Reads binary and ASCII PGM/PPM (P2, P3, P5, P6). Hand-written because sharp's prebuilt libvips
 * has no PNM loader and ORL ships as P5; the format is a header and raw samples. Input is
 * hostile (uploads to `facenet serve`, shard members): the header's size is checked against the
 * pixel budget and against the bytes present before anything is allocated, and the work is one
 * pass over the input, so both time and memory are bounded by the input's length.
 */
export function decodeNetpbm(path: string, buf: Buffer, maxPixels = MAX_NETPBM_PIXELS): NetpbmImage {
  const magic = buf.toString('latin1', 0, 2);
  if (!['P2', 'P3', 'P5', 'P6'].includes(magic)) throw new ImageDecodeError(path, `not a PGM/PPM file (magic '${magic}')`);
  const channels = magic === 'P3' || magic === 'P6' ? 3 : 1;
  const fields: number[] = [];
  let pos = 2;
  while (fields.length < 3) {
    while (pos < buf.length && isSpace(buf[pos])) pos++;
    if (buf[pos] === 0x23) {
      // '#' comment to end of line
      while (pos < buf.length && buf[pos] !== 0x0a) pos++;
      continue;
    }
    const start = pos;
    while (pos < buf.length && isDigit(buf[pos]) && pos - start < 10) pos++;
    if (start === pos || isDigit(buf[pos])) throw new ImageDecodeError(path, 'truncated or malformed header');
    fields.push(Number(buf.toString('latin1', start, pos)));
  }
  pos++; // the single whitespace after maxval
  const [width, height, maxval] = fields as [number, number, number];
  if (!(width > 0 && height > 0 && maxval > 0 && maxval < 65536)) throw new ImageDecodeError(path, 'bad header values');
  if (width * height > maxPixels) throw new ImageDecodeError(path, `${width} x ${height} pixels; at most ${maxPixels} are read`);
  const n = width * height * channels;
  const left = Math.max(0, buf.length - pos);
  if (magic === 'P5' || magic === 'P6') {
    const bytes = maxval > 255 ? 2 : 1;
    if (left < n * bytes) throw new ImageDecodeError(path, `truncated pixel data (${left} of ${n * bytes} bytes)`);
    if (bytes === 1 && maxval === 255) return { width, height, channels, data: buf.subarray(pos, pos + n) };
    const data = new Uint8Array(n);
    const scale = 255 / maxval;
    for (let i = 0; i < n; i++) data[i] = Math.round((bytes === 2 ? buf.readUInt16BE(pos + 2 * i) : (buf[pos + i] as number)) * scale);
    return { width, height, channels, data };
  }
  // ASCII: n values need at least 2n - 1 bytes (a digit each and a separator between).
  if (left < 2 * n - 1) throw new ImageDecodeError(path, `truncated pixel data (${left} bytes cannot hold ${n} values)`);
  return { width, height, channels, data: readAsciiSamples(path, buf, pos, n, 255 / maxval) };
}

function readAsciiSamples(path: string, buf: Buffer, pos: number, n: number, scale: number): Uint8Array {
  const data = new Uint8Array(n);
  let i = 0;
  while (i < n) {
    while (pos < buf.length && isSpace(buf[pos])) pos++;
    if (pos >= buf.length) throw new ImageDecodeError(path, `truncated pixel data (${i} of ${n} values)`);
    let v = 0;
    const start = pos;
    while (isDigit(buf[pos]) && pos - start < 6) v = v * 10 + (buf[pos++] as number) - 0x30;
    if (start === pos || !(pos >= buf.length || isSpace(buf[pos]))) throw new ImageDecodeError(path, `value ${i + 1} is not a sample`);
    data[i++] = Math.min(255, Math.round(v * scale));
  }
  return data;
}
