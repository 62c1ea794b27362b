import { overrideGradient } from './override-gradient';
import { tf } from './tf';

let stock: tf.GradConfig | undefined;

/**
 * A BatchMatMul gradient without transposed operands on wasm and cpu. tfjs's own writes
 * dA = dy x B^T as matMul(dy, B, false, true), and tfjs-wasm's matMul with `transposeB` is
 * ~12x slower than with the operand transposed first (measured on a 2048 x 4096 x 128 tile);
 * transposing explicitly costs one pass over B. Dense layers (the embedding head, classifier
 * heads) hit this on every step. Broadcast batches and transposed forward products keep the
 * stock gradient. FACENET_STOCK_MATMUL_GRADIENT=1 keeps the stock one everywhere (benchmarks).
 */
export function registerFastMatMulGradient(): void {
  stock ??= tf.getGradient('BatchMatMul');
  const fallback = stock;
  overrideGradient({
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved as [tf.Tensor3D, tf.Tensor3D];
      const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
      const backend = tf.getBackend();
      const plain = !transposeA && !transposeB && a.rank === 3 && b.rank === 3 && a.shape[0] === b.shape[0];
      if (!plain || (backend !== 'wasm' && backend !== 'cpu')) return fallback.gradFunc(dy, saved, attrs);
      const g = dy as tf.Tensor3D;
      return {
        a: () => tf.matMul(g, tf.transpose(b, [0, 2, 1])),
        b: () => tf.matMul(tf.transpose(a, [0, 2, 1]), g),
      };
    },
  });
}

/** Puts tfjs's own BatchMatMul gradient back. */
export function restoreMatMulGradient(): void {
  if (stock) overrideGradient(stock);
}
