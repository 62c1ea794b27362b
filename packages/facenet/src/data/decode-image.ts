import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp from 'sharp';
import { ImageDecodeError } from '../errors';
import { SquareImage } from './face-source';
import { decodeNetpbmBounded } from './netpbm-thread';

const NETPBM = new Set(['.pgm', '.ppm', '.pnm']);
export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.gif', '.webp', '.tif', '.tiff', ...NETPBM]);

export function isImagePath(path: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(path).toLowerCase());
}

/**
 * Decodes an image file (sharp for JPEG/PNG/GIF/WebP/TIFF, our reader for PGM/PPM), takes the
 * centred square covering `cropFraction` of the shorter side, and resizes it to side x side RGB.
 */
export async function decodeSquare(path: string, side: number, cropFraction = 1): Promise<SquareImage> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    throw new ImageDecodeError(path, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
  }
  return decodeSquareBytes(buf, path, side, cropFraction);
}

/** PGM/PPM by content ("P2"-"P6" and whitespace), for bytes without a file name (an upload). libvips has no reader for them. */
function isNetpbm(buf: Buffer): boolean {
  return buf.length > 3 && buf[0] === 0x50 && buf[1]! >= 0x32 && buf[1]! <= 0x36 && /\s/.test(String.fromCharCode(buf[2]!));
}

/** decodeSquare on bytes already read (an archive member, an object fetched); `name` gives the format (extension) and errors. */
export async function decodeSquareBytes(buf: Buffer, name: string, side: number, cropFraction = 1): Promise<SquareImage> {
  const path = name;
  try {
    let img: sharp.Sharp;
    if (NETPBM.has(extname(path).toLowerCase()) || isNetpbm(buf)) {
      const p = await decodeNetpbmBounded(path, buf);
      img = sharp(Buffer.from(p.data.buffer, p.data.byteOffset, p.data.length), {
        raw: { width: p.width, height: p.height, channels: p.channels },
      });
    } else {
      img = sharp(buf, { failOn: 'error' });
    }
    const meta = await img.metadata();
    const w = meta.width ?? 0;
    const h = meta.height ?? 0;
    if (!w || !h) throw new Error('image has no size');
    const crop = Math.max(1, Math.round(Math.min(w, h) * cropFraction));
    const left = Math.floor((w - crop) / 2);
    const top = Math.floor((h - crop) / 2);
    const { data, info } = await img
      .extract({ left, top, width: crop, height: crop })
      .resize(side, side, { fit: 'fill' })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const pixels = new Uint8Array(side * side * 3);
    if (info.channels === 3) pixels.set(data);
    else for (let i = 0; i < side * side; i++) pixels.fill(data[i * info.channels] as number, i * 3, i * 3 + 3);
    return { side, pixels };
  } catch (err) {
    if (err instanceof ImageDecodeError) throw err;
    throw new ImageDecodeError(path, (err as Error).message);
  }
}
