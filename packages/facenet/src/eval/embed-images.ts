import { tf } from '../backend/tf';
import { FaceSource } from '../data/face-source';
import { loadImages, SkippedImage } from '../data/load-images';
import { EmbeddingModel } from '../model/embedding-model';

export interface EmbeddedImages {
  /** Row-major [keys.length, dim]; rows of skipped images are NaN. */
  embeddings: Float32Array;
  dim: number;
  /** Whether each key decoded. */
  ok: boolean[];
  skipped: SkippedImage[];
}

/** Embeds images in batches (centre crop, no augmentation); corrupt files are reported, not thrown. */
export async function embedImages(
  model: EmbeddingModel,
  source: FaceSource,
  keys: string[],
  o: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<EmbeddedImages> {
  const dim = model.config.embeddingDim;
  const size = model.config.imageSize;
  const batch = o.batchSize ?? 64;
  const embeddings = new Float32Array(keys.length * dim).fill(NaN);
  const ok = new Array<boolean>(keys.length).fill(false);
  const skipped: SkippedImage[] = [];
  for (let start = 0; start < keys.length; start += batch) {
    const chunk = keys.slice(start, start + batch);
    const loaded = await loadImages(
      source,
      chunk.map((key) => ({ identity: 0, key })),
      { size, augment: null },
    );
    skipped.push(...loaded.skipped);
    if (loaded.count > 0) {
      const out = tf.tidy(() => model.forward(tf.tensor4d(loaded.data, [loaded.count, size, size, 3]), false));
      const values = (await out.data()) as Float32Array;
      out.dispose();
      const row = new Map(loaded.keys.map((k, i) => [k, i]));
      chunk.forEach((k, i) => {
        const r = row.get(k);
        if (r === undefined) return;
        embeddings.set(values.subarray(r * dim, (r + 1) * dim), (start + i) * dim);
        ok[start + i] = true;
      });
    }
    o.onProgress?.(Math.min(start + batch, keys.length), keys.length);
  }
  return { embeddings, dim, ok, skipped };
}
