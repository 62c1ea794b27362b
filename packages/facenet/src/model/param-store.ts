import { ModelError } from '../errors';
import { tf } from '../backend/tf';
import { hashString } from '../util/random';

export type Initializer = 'he' | 'glorot' | 'zeros' | 'ones';

/**
 * Named variables, created on first use with a seeded initializer. A name always maps to the
 * same seed, so a model built twice from the same seed has identical weights on every rank.
 */
export class ParamStore {
  readonly trainable = new Map<string, tf.Variable>();
  /** Non-trainable state (batch-norm moving statistics). */
  readonly state = new Map<string, tf.Variable>();

  constructor(private readonly seed: number) {}

  param(name: string, shape: number[], init: Initializer, fanIn = 1, fanOut = 1): tf.Variable {
    return this.getOrCreate(this.trainable, name, shape, init, fanIn, fanOut, true);
  }

  stateVar(name: string, shape: number[], init: 'zeros' | 'ones'): tf.Variable {
    return this.getOrCreate(this.state, name, shape, init, 1, 1, false);
  }

  private getOrCreate(
    map: Map<string, tf.Variable>,
    name: string,
    shape: number[],
    init: Initializer,
    fanIn: number,
    fanOut: number,
    trainable: boolean,
  ): tf.Variable {
    const existing = map.get(name);
    if (existing) {
      if (existing.shape.join(',') !== shape.join(',')) {
        throw new ModelError(name, `shape [${existing.shape}] but the graph asks for [${shape}]`);
      }
      return existing;
    }
    const value = tf.tidy(() => {
      const seed = (this.seed * 2654435761 + hashString(name)) % 2147483647;
      switch (init) {
        case 'zeros':
          return tf.zeros(shape);
        case 'ones':
          return tf.ones(shape);
        case 'he':
          return tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn), 'float32', seed);
        case 'glorot':
          return tf.randomNormal(shape, 0, Math.sqrt(2 / (fanIn + fanOut)), 'float32', seed);
      }
    });
    const v = tf.variable(value, trainable, `${name}_${Math.random().toString(36).slice(2, 8)}`);
    value.dispose();
    map.set(name, v);
    return v;
  }

  dispose(): void {
    for (const v of this.trainable.values()) v.dispose();
    for (const v of this.state.values()) v.dispose();
    this.trainable.clear();
    this.state.clear();
  }
}
