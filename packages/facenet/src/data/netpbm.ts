import { ImageDecodeError } from '../errors';

/**
 * Reads binary and ASCII PGM/PPM (P2, P3, P5, P6). Hand-written because sharp's prebuilt libvips
 * has no PNM loader and ORL ships as P5; the format is a header and raw samples.
 */
export function decodeNetpbm(path: string, buf: Buffer): { width: number; height: number; channels: 1 | 3; data: Uint8Array } {
  const magic = buf.toString('latin1', 0, 2);
  if (!['P2', 'P3', 'P5', 'P6'].includes(magic)) throw new ImageDecodeError(path, `not a PGM/PPM file (magic '${magic}')`);
  const channels = magic === 'P3' || magic === 'P6' ? 3 : 1;
  const fields: number[] = [];
  let pos = 2;
  while (fields.length < 3) {
    while (pos < buf.length && /\s/.test(String.fromCharCode(buf[pos] as number))) pos++;
    if (buf[pos] === 0x23) {
      // '#' comment to end of line
      while (pos < buf.length && buf[pos] !== 0x0a) pos++;
      continue;
    }
    const start = pos;
    while (pos < buf.length && /[0-9]/.test(String.fromCharCode(buf[pos] as number))) pos++;
    if (start === pos) throw new ImageDecodeError(path, 'truncated header');
    fields.push(Number(buf.toString('latin1', start, pos)));
  }
  pos++; // the single whitespace after maxval
  const [width, height, maxval] = fields as [number, number, number];
  if (!(width > 0 && height > 0 && maxval > 0 && maxval < 65536)) throw new ImageDecodeError(path, 'bad header values');
  const n = width * height * channels;
  const data = new Uint8Array(n);
  const scale = 255 / maxval;
  if (magic === 'P5' || magic === 'P6') {
    const bytes = maxval > 255 ? 2 : 1;
    if (buf.length - pos < n * bytes) throw new ImageDecodeError(path, `truncated pixel data (${buf.length - pos} of ${n * bytes} bytes)`);
    for (let i = 0; i < n; i++) {
      const v = bytes === 2 ? buf.readUInt16BE(pos + 2 * i) : (buf[pos + i] as number);
      data[i] = Math.round(v * scale);
    }
  } else {
    const values = buf
      .toString('latin1', pos)
      .split(/\s+/)
      .filter((s) => s.length > 0);
    if (values.length < n) throw new ImageDecodeError(path, `truncated pixel data (${values.length} of ${n} values)`);
    for (let i = 0; i < n; i++) data[i] = Math.round(Number(values[i]) * scale);
  }
  return { width, height, channels, data };
}
