import { lazyList } from '../util/lazy-list';

/**
 * Where face images come from. A source lists identities and decodes an image to a square RGB
 * bitmap; everything downstream (sampler, augmentation, evaluation) works on any source.
 */
export interface IdentityIndex {
  /** Identity names, index = label. */
  names: string[];
  /** Image keys per identity (paths for folders). */
  images: string[][];
  /**
   * Images per identity, when known without reading `images` (a packed or formula index, whose
   * `images[i]` is built when read): samplers and splits count with it.
   */
  sizes?: ArrayLike<number>;
}

/** How many images each identity has, without building the key lists of a packed index. */
export function identitySizes(index: IdentityIndex): ArrayLike<number> {
  return index.sizes ?? index.images.map((imgs) => imgs.length);
}

/** A decoded square RGB image, 8 bits per channel, row-major [side, side, 3]. */
export interface SquareImage {
  side: number;
  pixels: Uint8Array;
}

export interface FaceSource {
  readonly description: string;
  readonly index: IdentityIndex;
  /** Centre crop applied before resizing (1: whole image); written into checkpoints trained on it. */
  readonly cropFraction?: number;
  /** Decodes one image, centre-cropped and resized to side x side. Throws ImageDecodeError. */
  read(key: string, side: number): Promise<SquareImage>;
}

export function imageCount(index: IdentityIndex): number {
  const sizes = identitySizes(index);
  let n = 0;
  for (let i = 0; i < sizes.length; i++) n += sizes[i] as number;
  return n;
}

/** The index without the identities named in `exclude` (the index itself when none is). */
export function withoutIdentities(index: IdentityIndex, exclude: readonly string[] = []): IdentityIndex {
  if (!exclude.length) return index;
  const out = new Set(exclude);
  const keep: number[] = [];
  index.names.forEach((name, i) => out.has(name) || keep.push(i));
  return subIndex(index, keep);
}

/** The sub-index of the given identities (labels renumbered 0..n-1 in the given order). */
export function subIndex(index: IdentityIndex, identities: number[]): IdentityIndex {
  const sizes = identitySizes(index);
  return {
    names: identities.map((i) => index.names[i] as string),
    // Read when used: a packed parent builds an identity's keys only for the identities drawn.
    images: lazyList(identities.length, (j) => index.images[identities[j] as number] as string[]),
    sizes: Uint32Array.from(identities, (i) => sizes[i] as number),
  };
}
