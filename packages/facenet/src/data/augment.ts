import { SquareImage } from './face-source';
import { Rng } from '../util/random';

export interface AugmentOptions {
  /** Random crop of `size` out of the decoded `size * (1 + cropMargin)`. @default 0.125 */
  cropMargin?: number;
  /** @default true */
  flip?: boolean;
}

/** Side the source must decode to, so a random crop of `size` fits. */
export function decodeSide(size: number, cropMargin: number): number {
  return Math.round(size * (1 + cropMargin));
}

/**
 * Writes `size x size` RGB floats in [-1, 1] into `out` at `offset`: a random crop and flip when
 * `rng` is given (training), the centre crop otherwise (evaluation).
 */
export function cropToFloat(img: SquareImage, size: number, rng: Rng | null, flip: boolean, out: Float32Array, offset: number): void {
  const slack = img.side - size;
  const ox = rng ? Math.floor(rng() * (slack + 1)) : Math.floor(slack / 2);
  const oy = rng ? Math.floor(rng() * (slack + 1)) : Math.floor(slack / 2);
  const mirror = rng !== null && flip && rng() < 0.5;
  const src = img.pixels;
  for (let y = 0; y < size; y++) {
    const row = ((y + oy) * img.side + ox) * 3;
    for (let x = 0; x < size; x++) {
      const sx = mirror ? size - 1 - x : x;
      const s = row + sx * 3;
      const d = offset + (y * size + x) * 3;
      out[d] = (src[s] as number) / 127.5 - 1;
      out[d + 1] = (src[s + 1] as number) / 127.5 - 1;
      out[d + 2] = (src[s + 2] as number) / 127.5 - 1;
    }
  }
}
