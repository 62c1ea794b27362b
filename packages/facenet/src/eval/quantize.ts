/**
 * 128-byte embeddings: each component as int8 with one scale shared by the whole set (not per
 * vector, which would cost extra bytes). Unit-norm components rarely exceed a few tenths, so
 * the scale is fitted to the set's largest magnitude instead of wasting range on +-1.
 */
export interface QuantizedEmbeddings {
  codes: Int8Array;
  dim: number;
  /** value = code * scale */
  scale: number;
}

export function fitQuantScale(values: Float32Array): number {
  let max = 0;
  for (const v of values) max = Math.max(max, Math.abs(v));
  return max > 0 ? max / 127 : 1;
}

export function quantizeEmbeddings(values: Float32Array, dim: number, scale = fitQuantScale(values)): QuantizedEmbeddings {
  const codes = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) codes[i] = Math.max(-127, Math.min(127, Math.round((values[i] as number) / scale)));
  return { codes, dim, scale };
}

export function dequantizeEmbeddings(q: QuantizedEmbeddings): Float32Array {
  const out = new Float32Array(q.codes.length);
  for (let i = 0; i < out.length; i++) out[i] = (q.codes[i] as number) * q.scale;
  return out;
}
