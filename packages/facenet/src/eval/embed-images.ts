import { FaceSource } from '../data/face-source';
import { loadImages, LoadedImages, SkippedImage } from '../data/load-images';
import { ImageEmbedder, tfjsEmbedder } from '../inference/image-embedder';
import { EmbeddingModel } from '../model/embedding-model';

export interface EmbeddedImages {
  /** Row-major [keys.length, dim]; rows of skipped images are NaN. */
  embeddings: Float32Array;
  dim: number;
  /** Whether each key decoded. */
  ok: boolean[];
  skipped: SkippedImage[];
}

/**
 * Embeds images in batches (centre crop, no augmentation); corrupt files are reported, not thrown.
 * The next batch decodes while the embedder runs the current one (ONNX Runtime runs on a thread
 * of its own, so decoding and inference overlap). A model is embedded with TensorFlow.js.
 */
export async function embedImages(
  embedderOrModel: ImageEmbedder | EmbeddingModel,
  source: FaceSource,
  keys: string[],
  o: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<EmbeddedImages> {
  const embedder = embedderOrModel instanceof EmbeddingModel ? tfjsEmbedder(embedderOrModel) : embedderOrModel;
  const dim = embedder.embeddingDim;
  const size = embedder.imageSize;
  const batch = o.batchSize ?? 64;
  const embeddings = new Float32Array(keys.length * dim).fill(NaN);
  const ok = new Array<boolean>(keys.length).fill(false);
  const skipped: SkippedImage[] = [];
  const load = (start: number): Promise<LoadedImages> =>
    loadImages(
      source,
      keys.slice(start, start + batch).map((key) => ({ identity: 0, key })),
      { size, augment: null },
    );
  let next = keys.length > 0 ? load(0) : undefined;
  for (let start = 0; next; start += batch) {
    const loaded = await next;
    next = start + batch < keys.length ? load(start + batch) : undefined;
    next?.catch(() => {}); // awaited on the next turn; this only keeps an early failure from being unhandled
    skipped.push(...loaded.skipped);
    if (loaded.count > 0) {
      const values = await embedder.embed(loaded.data, loaded.count);
      const row = new Map(loaded.keys.map((k, i) => [k, i]));
      keys.slice(start, start + batch).forEach((k, i) => {
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
