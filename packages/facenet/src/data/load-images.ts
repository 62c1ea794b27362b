import { ImageDecodeError } from '../errors';
import { rngFor } from '../util/random';
import { AugmentOptions, cropToFloat, decodeSide } from './augment';
import { FaceSource } from './face-source';
import { BatchItem } from './pk-sampler';

export interface SkippedImage {
  key: string;
  reason: string;
}

export interface LoadedImages {
  /** [n, size, size, 3] floats in [-1, 1], n = items that decoded. */
  data: Float32Array;
  count: number;
  labels: Int32Array;
  keys: string[];
  skipped: SkippedImage[];
}

export interface LoadImagesOptions {
  size: number;
  /** Training augmentation, seeded by (seed, step, key); null = centre crop, no flip. */
  augment: (AugmentOptions & { seed: number; step: number }) | null;
  /** Decodes in flight at once. @default 8 */
  concurrency?: number;
}

/**
 * Decodes and augments a list of images. An image that fails to decode is skipped and reported
 * (never thrown), so one corrupt file cannot stop a run; other errors propagate.
 */
export async function loadImages(source: FaceSource, items: BatchItem[], o: LoadImagesOptions): Promise<LoadedImages> {
  const margin = o.augment ? (o.augment.cropMargin ?? 0.125) : 0;
  const side = decodeSide(o.size, margin);
  const decoded = new Array<Awaited<ReturnType<FaceSource['read']>> | SkippedImage>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const item = items[i] as BatchItem;
      try {
        decoded[i] = await source.read(item.key, side);
      } catch (err) {
        if (!(err instanceof ImageDecodeError)) throw err;
        decoded[i] = { key: item.key, reason: err.message };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency ?? 8, items.length) }, worker));
  const per = o.size * o.size * 3;
  const okIdx = decoded.flatMap((d, i) => ('pixels' in d ? [i] : []));
  const data = new Float32Array(okIdx.length * per);
  const labels = new Int32Array(okIdx.length);
  const keys: string[] = [];
  okIdx.forEach((i, k) => {
    const item = items[i] as BatchItem;
    const img = decoded[i] as Awaited<ReturnType<FaceSource['read']>>;
    const rng = o.augment ? rngFor(o.augment.seed, 'augment', o.augment.step, item.key) : null;
    cropToFloat(img, o.size, rng, o.augment?.flip ?? true, data, k * per);
    labels[k] = item.identity;
    keys.push(item.key);
  });
  const skipped = decoded.filter((d): d is SkippedImage => !('pixels' in d));
  return { data, count: okIdx.length, labels, keys, skipped };
}
