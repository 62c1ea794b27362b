import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { tf } from '../backend/tf';
import { FaceSource } from '../data/face-source';
import { loadImages, SkippedImage } from '../data/load-images';
import { rngFor } from '../util/random';
import { EmbeddedImages } from './embed-images';

/**
 * Eigenfaces (Turk and Pentland, 1991), whitened: the baseline a learned embedding has to beat.
 * Grey centre crops are projected on the top principal components of a fit set and divided by
 * each component's standard deviation, then L2-normalised, so squared distance compares them
 * like the network's embeddings.
 */
export interface Eigenfaces {
  /** Side of the grey square images, in pixels. */
  size: number;
  mean: Float32Array;
  /** [components, size * size], row-major. */
  basis: Float32Array;
  /** 1 / sqrt(eigenvalue) per component. */
  whiten: Float32Array;
  components: number;
}

export interface FitEigenfacesOptions {
  /** @default 48 */
  size?: number;
  /** @default 128 */
  components?: number;
  /** Subspace iterations (each one a [d, d] x [d, k + 16] product). @default 12 */
  iterations?: number;
  seed?: number;
}

/** Grey [n, size * size] pixels of `keys`, centre-cropped as the source crops; unreadable images are skipped and reported. */
async function greyPixels(
  source: FaceSource,
  keys: string[],
  size: number,
): Promise<{ pixels: Float32Array; ok: boolean[]; skipped: SkippedImage[] }> {
  const d = size * size;
  const pixels = new Float32Array(keys.length * d);
  const ok = new Array<boolean>(keys.length).fill(false);
  const skipped: SkippedImage[] = [];
  for (let start = 0; start < keys.length; start += 256) {
    const chunk = keys.slice(start, start + 256);
    const loaded = await loadImages(
      source,
      chunk.map((key) => ({ identity: 0, key })),
      { size, augment: null },
    );
    skipped.push(...loaded.skipped);
    const row = new Map(loaded.keys.map((k, i) => [k, i]));
    chunk.forEach((k, i) => {
      const r = row.get(k);
      if (r === undefined) return;
      const rgb = loaded.data.subarray(r * d * 3, (r + 1) * d * 3);
      const out = pixels.subarray((start + i) * d, (start + i + 1) * d);
      for (let p = 0; p < d; p++) out[p] = ((rgb[3 * p] as number) + (rgb[3 * p + 1] as number) + (rgb[3 * p + 2] as number)) / 3;
      ok[start + i] = true;
    });
  }
  return { pixels, ok, skipped };
}

/** Orthonormalises the columns of q ([d, m], row-major) in place (modified Gram-Schmidt). */
function orthonormalise(q: Float32Array, d: number, m: number): void {
  for (let j = 0; j < m; j++) {
    for (let i = 0; i < j; i++) {
      let dot = 0;
      for (let r = 0; r < d; r++) dot += (q[r * m + i] as number) * (q[r * m + j] as number);
      for (let r = 0; r < d; r++) q[r * m + j] = (q[r * m + j] as number) - dot * (q[r * m + i] as number);
    }
    let norm = 0;
    for (let r = 0; r < d; r++) norm += (q[r * m + j] as number) ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let r = 0; r < d; r++) q[r * m + j] = (q[r * m + j] as number) / norm;
  }
}

/**
 * Fits whitened eigenfaces on the images `keys` of `source`: the covariance on the tfjs backend,
 * its top components by subspace iteration, the final small eigenproblem by ml-matrix.
 */
export async function fitEigenfaces(
  source: FaceSource,
  keys: string[],
  o: FitEigenfacesOptions = {},
): Promise<Eigenfaces & { images: number }> {
  const size = o.size ?? 48;
  const k = o.components ?? 128;
  const d = size * size;
  const g = await greyPixels(source, keys, size);
  const rows = g.ok.flatMap((ok, i) => (ok ? [i] : []));
  if (rows.length < 2) throw new Error(`eigenfaces need at least 2 readable fit images, got ${rows.length}`);
  const n = rows.length;
  const x = new Float32Array(n * d);
  rows.forEach((i, r) => x.set(g.pixels.subarray(i * d, (i + 1) * d), r * d));
  const mean = new Float32Array(d);
  for (let r = 0; r < n; r++) for (let p = 0; p < d; p++) mean[p] = (mean[p] as number) + (x[r * d + p] as number) / n;
  for (let r = 0; r < n; r++) for (let p = 0; p < d; p++) x[r * d + p] = (x[r * d + p] as number) - (mean[p] as number);
  const m = Math.min(d, k + 16);
  const cov = tf.tidy(() => {
    const xt = tf.tensor2d(x, [n, d]);
    return tf.matMul(tf.transpose(xt), xt).div(n) as tf.Tensor2D;
  });
  try {
    const rng = rngFor(o.seed ?? 1, 'eigenfaces');
    let q: Float32Array = Float32Array.from({ length: d * m }, () => rng() - 0.5);
    orthonormalise(q, d, m);
    for (let it = 0; it < (o.iterations ?? 12); it++) {
      const z = tf.tidy(() => tf.matMul(cov, tf.tensor2d(q, [d, m])));
      q = (await z.data()) as Float32Array;
      z.dispose();
      orthonormalise(q, d, m);
    }
    const small = tf.tidy(() => {
      const qt = tf.tensor2d(q, [d, m]);
      return tf.matMul(tf.transpose(qt), tf.matMul(cov, qt));
    });
    const b = (await small.data()) as Float32Array;
    small.dispose();
    const eig = new EigenvalueDecomposition(new Matrix(Array.from({ length: m }, (_, i) => Array.from(b.subarray(i * m, (i + 1) * m)))), {
      assumeSymmetric: true,
    });
    const values = eig.realEigenvalues; // ascending
    const vectors = eig.eigenvectorMatrix;
    const basis = new Float32Array(k * d);
    const whiten = new Float32Array(k);
    for (let c = 0; c < Math.min(k, m); c++) {
      const col = m - 1 - c;
      whiten[c] = 1 / Math.sqrt(Math.max(values[col] as number, 1e-12));
      for (let p = 0; p < d; p++) {
        let s = 0;
        for (let j = 0; j < m; j++) s += (q[p * m + j] as number) * vectors.get(j, col);
        basis[c * d + p] = s;
      }
    }
    return { size, mean, basis, whiten, components: k, images: n };
  } finally {
    cov.dispose();
  }
}

/** Whitened, L2-normalised eigenface embeddings of `keys` (rows of unreadable images are NaN). */
export async function eigenfaceEmbeddings(e: Eigenfaces, source: FaceSource, keys: string[]): Promise<EmbeddedImages> {
  const d = e.size * e.size;
  const g = await greyPixels(source, keys, e.size);
  const embeddings = new Float32Array(keys.length * e.components).fill(NaN);
  const centred = new Float64Array(d);
  for (let i = 0; i < keys.length; i++) {
    if (!g.ok[i]) continue;
    for (let p = 0; p < d; p++) centred[p] = (g.pixels[i * d + p] as number) - (e.mean[p] as number);
    const out = embeddings.subarray(i * e.components, (i + 1) * e.components);
    let norm = 0;
    for (let c = 0; c < e.components; c++) {
      let s = 0;
      for (let p = 0; p < d; p++) s += (e.basis[c * d + p] as number) * (centred[p] as number);
      out[c] = s * (e.whiten[c] as number);
      norm += (out[c] as number) ** 2;
    }
    norm = Math.sqrt(norm) || 1;
    for (let c = 0; c < e.components; c++) out[c] = (out[c] as number) / norm;
  }
  return { embeddings, dim: e.components, ok: g.ok, skipped: g.skipped };
}
