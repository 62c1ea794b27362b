import { BoundedHeap } from './bounded-heap';
import { forEachDistanceTile } from './distance-tiles';

/**
 * For each identity, its k most confusable identities: nearest centroids (mean embedding,
 * renormalised) by squared distance, computed in tiles with a bounded heap per identity.
 * Returns neighbours per label in ascending distance; labels are the values in `labels`.
 */
export async function confusableIdentities(
  emb: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  k: number,
  block = 2048,
): Promise<Map<number, { identity: number; distance: number }[]>> {
  const ids = [...new Set(Array.from(labels))].sort((a, b) => a - b);
  const row = new Map(ids.map((id, i) => [id, i]));
  const centroids = new Float32Array(ids.length * dim);
  const counts = new Float64Array(ids.length);
  for (let i = 0; i < labels.length; i++) {
    const r = row.get(labels[i] as number) as number;
    counts[r] = (counts[r] as number) + 1;
    for (let d = 0; d < dim; d++) centroids[r * dim + d] = (centroids[r * dim + d] as number) + (emb[i * dim + d] as number);
  }
  for (let r = 0; r < ids.length; r++) {
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += (centroids[r * dim + d] as number) ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < dim; d++) centroids[r * dim + d] = (centroids[r * dim + d] as number) / norm;
  }
  const heaps = ids.map(() => new BoundedHeap(k));
  await forEachDistanceTile(centroids, centroids, dim, block, block, (r0, c0, tile, rows, cols) => {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        if (r0 + r === c0 + c) continue;
        const d = tile[r * cols + c] as number;
        const heap = heaps[r0 + r] as BoundedHeap;
        if (d < heap.bound) heap.offer(d, c0 + c, d);
      }
    }
  });
  return new Map(
    ids.map((id, i) => [id, (heaps[i] as BoundedHeap).sorted().map((e) => ({ identity: ids[e.id] as number, distance: e.value }))]),
  );
}
