import { tf } from '../backend/tf';
import { ConfigError } from '../errors';

export type OptimizerName = 'adagrad' | 'adam' | 'momentum';
export const OPTIMIZERS: readonly OptimizerName[] = ['adagrad', 'adam', 'momentum'];

export interface OptimizerOptions {
  /** @default 'adagrad' (the paper's) */
  name?: OptimizerName;
  /** Base learning rate. @default 0.05 for adagrad (the paper's), 0.001 for adam, 0.01 for momentum */
  learningRate?: number;
  /** Momentum for 'momentum'. @default 0.9 */
  momentum?: number;
  /** Adam's beta1 and beta2. @default 0.9, 0.999 */
  beta1?: number;
  beta2?: number;
  /** Numerical floor. @default 1e-7 */
  epsilon?: number;
  /** Initial AdaGrad accumulator. @default 0.1 */
  initialAccumulator?: number;
  /** L2 weight decay added to the gradient. @default 0 */
  weightDecay?: number;
}

export type OptimizerConfig = Required<OptimizerOptions>;

const DEFAULT_LR: Record<OptimizerName, number> = { adagrad: 0.05, adam: 0.001, momentum: 0.01 };

export function compileOptimizerOptions(o: OptimizerOptions = {}): OptimizerConfig {
  const name = o.name ?? 'adagrad';
  if (!OPTIMIZERS.includes(name)) throw new ConfigError('optimizer.name', `unknown '${name}', expected ${OPTIMIZERS.join(', ')}`);
  const c: OptimizerConfig = {
    name,
    learningRate: o.learningRate ?? DEFAULT_LR[name],
    momentum: o.momentum ?? 0.9,
    beta1: o.beta1 ?? 0.9,
    beta2: o.beta2 ?? 0.999,
    epsilon: o.epsilon ?? 1e-7,
    initialAccumulator: o.initialAccumulator ?? 0.1,
    weightDecay: o.weightDecay ?? 0,
  };
  // Upper bounds far above any useful value: they only keep absurd numbers (1e308) out.
  if (!(c.learningRate > 0 && c.learningRate <= 1000))
    throw new ConfigError('optimizer.learningRate', `must be in (0, 1000], got ${c.learningRate}`);
  if (!(c.momentum >= 0 && c.momentum < 1)) throw new ConfigError('optimizer.momentum', `must be in [0, 1), got ${c.momentum}`);
  for (const k of ['beta1', 'beta2'] as const)
    if (!(c[k] >= 0 && c[k] < 1)) throw new ConfigError(`optimizer.${k}`, `must be in [0, 1), got ${c[k]}`);
  if (!(c.epsilon > 0 && c.epsilon <= 1)) throw new ConfigError('optimizer.epsilon', `must be in (0, 1], got ${c.epsilon}`);
  if (!(c.initialAccumulator >= 0 && c.initialAccumulator <= 1000))
    throw new ConfigError('optimizer.initialAccumulator', `must be in [0, 1000], got ${c.initialAccumulator}`);
  if (!(c.weightDecay >= 0 && c.weightDecay <= 1))
    throw new ConfigError('optimizer.weightDecay', `must be in [0, 1], got ${c.weightDecay}`);
  return c;
}

/**
 * AdaGrad, Adam and momentum SGD with their slots as named variables (`<param>/<slot>`), so a
 * checkpoint holds the complete optimizer state and a resumed run continues exactly.
 */
export class Optimizer {
  readonly config: OptimizerConfig;
  readonly slots = new Map<string, tf.Variable>();
  /** Number of updates applied so far (Adam's bias correction uses it). */
  iterations = 0;

  constructor(options: OptimizerOptions = {}) {
    this.config = compileOptimizerOptions(options);
  }

  private slot(param: string, slot: string, like: tf.Variable, fill: number): tf.Variable {
    const key = `${param}/${slot}`;
    let v = this.slots.get(key);
    if (!v) {
      v = tf.variable(tf.fill(like.shape, fill), false);
      this.slots.set(key, v);
    }
    return v;
  }

  /** Applies one update with learning rate `lr` to every parameter that has a gradient. */
  apply(params: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void {
    const c = this.config;
    this.iterations++;
    const t = this.iterations;
    for (const [name, p] of params) {
      const g0 = grads.get(name);
      if (!g0) continue;
      tf.tidy(() => {
        const g = c.weightDecay > 0 ? tf.add(g0, tf.mul(p, c.weightDecay)) : g0;
        switch (c.name) {
          case 'adagrad': {
            const acc = this.slot(name, 'accumulator', p, c.initialAccumulator);
            acc.assign(tf.add(acc, tf.square(g)));
            p.assign(tf.sub(p, tf.mul(lr, tf.div(g, tf.add(tf.sqrt(acc), c.epsilon)))));
            break;
          }
          case 'adam': {
            const m = this.slot(name, 'm', p, 0);
            const v = this.slot(name, 'v', p, 0);
            m.assign(tf.add(tf.mul(m, c.beta1), tf.mul(g, 1 - c.beta1)));
            v.assign(tf.add(tf.mul(v, c.beta2), tf.mul(tf.square(g), 1 - c.beta2)));
            const stepSize = (lr * Math.sqrt(1 - c.beta2 ** t)) / (1 - c.beta1 ** t);
            p.assign(tf.sub(p, tf.mul(stepSize, tf.div(m, tf.add(tf.sqrt(v), c.epsilon)))));
            break;
          }
          case 'momentum': {
            const v = this.slot(name, 'velocity', p, 0);
            v.assign(tf.add(tf.mul(v, c.momentum), g));
            p.assign(tf.sub(p, tf.mul(lr, v)));
            break;
          }
        }
      });
    }
  }

  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
  }
}
