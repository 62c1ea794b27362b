import { ConfigError } from '../errors';

export type ScheduleKind = 'constant' | 'step' | 'cosine';

export interface ScheduleOptions {
  /** @default 'constant' */
  kind?: ScheduleKind;
  /** Linear warm-up from 0 over this many steps. @default 0 */
  warmupSteps?: number;
  /** 'step': multiply by `factor` every `every` steps. @default every 1000, factor 0.5 */
  every?: number;
  factor?: number;
  /** 'cosine': decay to base * minFactor at `totalSteps`. @default minFactor 0.01 */
  minFactor?: number;
  totalSteps?: number;
}

export type ScheduleConfig = Required<ScheduleOptions>;

export function compileScheduleOptions(o: ScheduleOptions = {}, totalSteps = 1): ScheduleConfig {
  const c: ScheduleConfig = {
    kind: o.kind ?? 'constant',
    warmupSteps: o.warmupSteps ?? 0,
    every: o.every ?? 1000,
    factor: o.factor ?? 0.5,
    minFactor: o.minFactor ?? 0.01,
    totalSteps: o.totalSteps ?? totalSteps,
  };
  if (!['constant', 'step', 'cosine'].includes(c.kind))
    throw new ConfigError('schedule.kind', `unknown '${c.kind}', expected constant, step or cosine`);
  if (!(c.warmupSteps >= 0)) throw new ConfigError('schedule.warmupSteps', `must be >= 0, got ${c.warmupSteps}`);
  if (!(c.every >= 1)) throw new ConfigError('schedule.every', `must be >= 1, got ${c.every}`);
  if (!(c.factor > 0 && c.factor <= 1)) throw new ConfigError('schedule.factor', `must be in (0, 1], got ${c.factor}`);
  return c;
}

/** Learning rate at (0-based) step `step`: a pure function, so a resumed run gets the same rates. */
export function learningRateAt(base: number, c: ScheduleConfig, step: number): number {
  const warm = c.warmupSteps > 0 && step < c.warmupSteps ? (step + 1) / c.warmupSteps : 1;
  switch (c.kind) {
    case 'constant':
      return base * warm;
    case 'step':
      return base * warm * c.factor ** Math.floor(step / c.every);
    case 'cosine': {
      const progress = Math.min(1, step / Math.max(1, c.totalSteps));
      return base * warm * (c.minFactor + (1 - c.minFactor) * 0.5 * (1 + Math.cos(Math.PI * progress)));
    }
  }
}
