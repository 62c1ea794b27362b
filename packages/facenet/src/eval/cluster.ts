import { squaredDistance } from './distances';

/**
 * Agglomerative clustering with average linkage: merge the two closest clusters while their
 * mean pairwise squared distance is below `threshold`. O(n^2) memory, for galleries up to a
 * few thousand faces. Returns a cluster id per row, numbered by first appearance.
 */
export function agglomerativeCluster(emb: Float32Array, dim: number, threshold: number): number[] {
  const n = emb.length / dim;
  const sum = new Float64Array(n * n); // sum of pairwise distances between clusters (by representative)
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) sum[i * n + j] = sum[j * n + i] = squaredDistance(emb, i, emb, j, dim);
  const size = new Array<number>(n).fill(1);
  const alive = new Array<boolean>(n).fill(true);
  const parent = Array.from({ length: n }, (_, i) => i);
  for (;;) {
    let best = Infinity,
      bi = -1,
      bj = -1;
    for (let i = 0; i < n; i++) {
      if (!alive[i]) continue;
      for (let j = i + 1; j < n; j++) {
        if (!alive[j]) continue;
        const avg = (sum[i * n + j] as number) / ((size[i] as number) * (size[j] as number));
        if (avg < best) {
          best = avg;
          bi = i;
          bj = j;
        }
      }
    }
    if (bi < 0 || best >= threshold) break;
    // Merge bj into bi: linkage sums add up.
    for (let k = 0; k < n; k++) {
      if (!alive[k] || k === bi || k === bj) continue;
      const s = (sum[bi * n + k] as number) + (sum[bj * n + k] as number);
      sum[bi * n + k] = sum[k * n + bi] = s;
    }
    size[bi] = (size[bi] as number) + (size[bj] as number);
    alive[bj] = false;
    parent[bj] = bi;
  }
  const root = (i: number): number => (parent[i] === i ? i : root(parent[i] as number));
  const ids = new Map<number, number>();
  return Array.from({ length: n }, (_, i) => {
    const r = root(i);
    if (!ids.has(r)) ids.set(r, ids.size);
    return ids.get(r) as number;
  });
}

export interface Neighbour {
  index: number;
  distance: number;
}

/** The k nearest gallery rows of one probe row (squared L2). */
export function nearestNeighbours(gallery: Float32Array, probe: Float32Array, probeRow: number, dim: number, k: number): Neighbour[] {
  const n = gallery.length / dim;
  const all: Neighbour[] = [];
  for (let i = 0; i < n; i++) all.push({ index: i, distance: squaredDistance(gallery, i, probe, probeRow, dim) });
  return all.sort((a, b) => a.distance - b.distance).slice(0, k);
}
