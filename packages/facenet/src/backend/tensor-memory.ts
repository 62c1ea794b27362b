import { tf } from './tf';

interface HeapBackend {
  typedArrayFromHeap?: (t: tf.TensorInfo) => Float32Array;
}

/**
 * A float32 tensor's values without a copy where the backend allows it: on wasm, a view of its
 * memory on the module's heap (valid until the next allocation may grow the heap, so take it
 * after allocating and use it at once); elsewhere dataSync(). Callers must not write into an
 * input's values; writing into a tensor they just created, before anyone reads it, is the point.
 */
export function float32Values(t: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as HeapBackend;
  if (tf.getBackend() === 'wasm' && typeof backend.typedArrayFromHeap === 'function') return backend.typedArrayFromHeap(t);
  return t.dataSync() as Float32Array;
}
