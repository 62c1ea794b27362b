import { tf } from '../backend/tf';

/**
 * Squared L2 distances between rows of A [n, d] and B [m, d], produced tile by tile
 * (rowBlock x colBlock at a time, matrix products on the tfjs backend), so an N x N matrix is
 * never held: peak extra memory is about 3 x rowBlock x colBlock x 4 bytes.
 */
export async function forEachDistanceTile(
  a: Float32Array,
  b: Float32Array,
  dim: number,
  rowBlock: number,
  colBlock: number,
  visit: (rowStart: number, colStart: number, tile: Float32Array, rows: number, cols: number) => void,
): Promise<void> {
  const n = a.length / dim;
  const m = b.length / dim;
  for (let c0 = 0; c0 < m; c0 += colBlock) {
    const cols = Math.min(colBlock, m - c0);
    const bt = tf.tensor2d(b.subarray(c0 * dim, (c0 + cols) * dim), [cols, dim]);
    const bSq = tf.sum(tf.square(bt), 1);
    // Transposed once per column block: tfjs-wasm's matMul with transposeB is ~10x slower.
    const bT = tf.transpose(bt);
    try {
      for (let r0 = 0; r0 < n; r0 += rowBlock) {
        const rows = Math.min(rowBlock, n - r0);
        const tile = tf.tidy(() => {
          const at = tf.tensor2d(a.subarray(r0 * dim, (r0 + rows) * dim), [rows, dim]);
          const aSq = tf.sum(tf.square(at), 1);
          const dot = tf.matMul(at, bT);
          return tf.relu(tf.add(tf.sub(tf.expandDims(aSq, 1), tf.mul(2, dot)), tf.expandDims(bSq, 0)));
        });
        // Read asynchronously: the webgpu backend has no synchronous read in Node.
        const values = (await tile.data()) as Float32Array;
        tile.dispose();
        visit(r0, c0, values, rows, cols);
      }
    } finally {
      bt.dispose();
      bT.dispose();
      bSq.dispose();
    }
  }
}
