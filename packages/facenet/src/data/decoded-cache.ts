import type { SquareImage } from './face-source';

/**
 * Decoded images kept in memory by key and size, oldest out first (decoding costs more than a
 * hit). Failed decodes are not kept: the error is reported each time the image is drawn.
 */
export class DecodedCache {
  private readonly entries = new Map<string, Promise<SquareImage>>();

  constructor(private readonly capacity = 20000) {}

  get(key: string, side: number, decode: () => Promise<SquareImage>): Promise<SquareImage> {
    const k = `${side}:${key}`;
    const hit = this.entries.get(k);
    if (hit) return hit;
    const p = decode();
    p.catch(() => this.entries.delete(k));
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(k, p);
    return p;
  }
}
