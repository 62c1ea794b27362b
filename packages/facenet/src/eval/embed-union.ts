import type { EmbeddedImages } from './embed-images';

/**
 * The rows of `e` (embedded for `keys`) for another key list `wanted` (each one of `keys`): two
 * evaluations over overlapping images embed each image once.
 */
export function embeddedRows(e: EmbeddedImages, keys: readonly string[], wanted: readonly string[]): EmbeddedImages {
  const row = new Map(keys.map((k, i) => [k, i]));
  const embeddings = new Float32Array(wanted.length * e.dim).fill(NaN);
  const ok = wanted.map((k, i) => {
    const r = row.get(k);
    if (r === undefined || !e.ok[r]) return false;
    embeddings.set(e.embeddings.subarray(r * e.dim, (r + 1) * e.dim), i * e.dim);
    return true;
  });
  const kept = new Set(wanted);
  return { embeddings, dim: e.dim, ok, skipped: e.skipped.filter((s) => kept.has(s.key)) };
}
