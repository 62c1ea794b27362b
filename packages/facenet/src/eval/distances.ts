/** Squared L2 distance between rows i and j of row-major matrices with `dim` columns. */
export function squaredDistance(a: Float32Array, i: number, b: Float32Array, j: number, dim: number): number {
  let s = 0;
  const oa = i * dim,
    ob = j * dim;
  for (let k = 0; k < dim; k++) {
    const d = (a[oa + k] as number) - (b[ob + k] as number);
    s += d * d;
  }
  return s;
}

/** Distances of index pairs [i, j] within one embedding matrix. */
export function pairDistances(emb: Float32Array, dim: number, pairs: [number, number][]): Float32Array {
  return Float32Array.from(pairs, ([i, j]) => squaredDistance(emb, i, emb, j, dim));
}
