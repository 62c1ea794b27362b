import { tf } from '../backend/tf';
import { checkGpuFaults } from '../backend/webgpu';
import { BackendError, NonFiniteError } from '../errors';
import { EmbeddingModel } from '../model/embedding-model';
import { Optimizer } from '../optim/optimizer';
import { FLAT_STATS } from './flat-vector-codec';
import { ShardGradients } from './shard-gradients';

/**
 * The non-finite guard: a step whose loss, gradients or updated weights hold NaN or Inf is not
 * applied. Ranks decide alike without talking: they check the same reduced vector, and their
 * weights before the update are identical, so so are the weights after it.
 */

/**
 * Applies the optimizer with the summed gradients divided by `count`, and moves batch-norm
 * moving statistics toward the mean of the shards' batch statistics.
 */
export function applyUpdate(
  model: EmbeddingModel,
  optimizer: Optimizer,
  summed: ShardGradients,
  count: number,
  lr: number,
  bnMomentum: number,
): void {
  const mean = new Map<string, tf.Tensor>();
  try {
    for (const [k, g] of summed.grads) mean.set(k, tf.div(g, count));
    optimizer.apply(model.store.trainable, mean, lr);
    tf.tidy(() => {
      for (const [name, s] of summed.bnStats) {
        const mm = model.store.state.get(`${name}/moving_mean`);
        const mv = model.store.state.get(`${name}/moving_variance`);
        mm?.assign(tf.add(tf.mul(mm, bnMomentum), tf.mul(tf.div(s.mean, count), 1 - bnMomentum)));
        mv?.assign(tf.add(tf.mul(mv, bnMomentum), tf.mul(tf.div(s.variance, count), 1 - bnMomentum)));
      }
    });
  } finally {
    for (const t of mean.values()) t.dispose();
  }
}

/**
 * Throws NonFiniteError when the summed flat vector (gradients, batch-norm batch statistics from
 * `bnOffset` on, step statistics last) has NaN or Inf, naming the part that holds it.
 */
export function checkFiniteVector(flat: Float32Array, step: number, bnOffset = flat.length - FLAT_STATS): void {
  const statsOffset = flat.length - FLAT_STATS;
  for (let i = 0; i < flat.length; i++) {
    if (!Number.isFinite(flat[i] as number)) {
      const what = i >= statsOffset ? 'loss' : i >= bnOffset ? 'batch-norm statistics' : 'gradients';
      throw new NonFiniteError(step, what, `element ${i} of ${flat.length} is ${flat[i]}`);
    }
  }
}

/**
 * The sum of every element's absolute value, as a scalar. Added in pairs, not with addN: a WebGPU
 * shader may bind 8 storage buffers by default, and tfjs-webgpu's addN of 29 inputs fails
 * validation (a kernel that never ran, whose output is garbage).
 */
function sumOfAbsolutes(list: tf.Variable[]): tf.Scalar {
  return list.map((v) => tf.sum(tf.abs(v)) as tf.Scalar).reduce((a, b) => tf.add(a, b));
}

/** True when every variable is finite, read asynchronously (webgpu can read no other way). A sum of absolute values is NaN or Inf if any element is. */
export async function allFinite(vars: Iterable<tf.Variable>): Promise<boolean> {
  const list = [...vars];
  if (list.length === 0) return true;
  const total = tf.tidy(() => sumOfAbsolutes(list));
  try {
    return Number.isFinite((await total.data())[0]);
  } finally {
    total.dispose();
  }
}

/** A copy of everything an update changes (weights, batch-norm statistics, optimizer slots and count). */
class UpdateSnapshot {
  private readonly saved = new Map<tf.Variable, tf.Tensor>();
  private readonly slotNames: Set<string>;
  private readonly iterations: number;

  constructor(
    private readonly model: EmbeddingModel,
    private readonly optimizer: Optimizer,
  ) {
    for (const v of [...model.store.trainable.values(), ...model.store.state.values(), ...optimizer.slots.values()])
      this.saved.set(v, tf.clone(v));
    this.slotNames = new Set(optimizer.slots.keys());
    this.iterations = optimizer.iterations;
  }

  restore(): void {
    for (const [v, copy] of this.saved) v.assign(copy);
    for (const [name, slot] of [...this.optimizer.slots]) {
      if (this.slotNames.has(name)) continue;
      slot.dispose(); // created by the rejected update
      this.optimizer.slots.delete(name);
    }
    this.optimizer.iterations = this.iterations;
  }

  dispose(): void {
    for (const t of this.saved.values()) t.dispose();
  }
}

/**
 * applyUpdate, then a check of the weights: if any is NaN or Inf the update is undone and
 * NonFiniteError thrown, so the model and optimizer are exactly as before the call.
 */
export async function applyUpdateGuarded(
  model: EmbeddingModel,
  optimizer: Optimizer,
  summed: ShardGradients,
  count: number,
  lr: number,
  bnMomentum: number,
  step: number,
): Promise<void> {
  const before = new UpdateSnapshot(model, optimizer);
  try {
    applyUpdate(model, optimizer, summed, count, lr, bnMomentum);
    if (!(await allFinite([...model.store.trainable.values(), ...model.store.state.values(), ...optimizer.slots.values()]))) {
      before.restore();
      throw new NonFiniteError(step, 'weights', `the update at learning rate ${lr.toExponential(2)} made weights NaN or Inf; not applied`);
    }
    checkGpuFaults((m) => {
      before.restore();
      return new BackendError(`the GPU refused a kernel of the update at step ${step}; not applied: ${m}`);
    });
  } finally {
    before.dispose();
  }
}
