/**
 * Where face images come from. A source lists identities and decodes an image to a square RGB
 * bitmap; everything downstream (sampler, augmentation, evaluation) works on any source.
 */
export interface IdentityIndex {
  /** Identity names, index = label. */
  names: string[];
  /** Image keys per identity (paths for folders). */
  images: string[][];
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
  return index.images.reduce((n, imgs) => n + imgs.length, 0);
}

/** The sub-index of the given identities (labels renumbered 0..n-1 in the given order). */
export function subIndex(index: IdentityIndex, identities: number[]): IdentityIndex {
  return {
    names: identities.map((i) => index.names[i] as string),
    images: identities.map((i) => index.images[i] as string[]),
  };
}
