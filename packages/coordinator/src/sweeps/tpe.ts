import type { Rng } from '@facenet/core';
import { choicesOf, parameterKey, SweepParameter } from '@facenet/protocol';

/** A finished trial as the search sees it: its parameters and its score, higher better. */
export interface Observation {
  params: Record<string, unknown>;
  score: number;
}

/** Candidates drawn from the good trials' density per parameter; the best ratio is proposed. */
const CANDIDATES = 24;

/**
 * One parameter's value proposed by the Tree-structured Parzen Estimator (Bergstra et al. 2011,
 * as hyperopt and Optuna run it, univariate): the observations are split at the `gamma` quantile
 * of the score into good and bad, each side's values make a density (a Parzen window: one
 * truncated Gaussian per value plus a wide prior; for choices, smoothed counts), and of
 * CANDIDATES values drawn from the good density the one that maximises good(x) / bad(x) is
 * proposed. Ranges are searched in the space they are drawn in (log for logUniform; integers as
 * reals, rounded). Parameters are proposed independently, as hyperopt does.
 */
export function proposeParameter(p: SweepParameter, observations: readonly Observation[], gamma: number, rng: Rng): unknown {
  const sorted = [...observations].sort((a, b) => b.score - a.score);
  const nGood = Math.min(sorted.length - 1, Math.max(1, Math.ceil(gamma * sorted.length)));
  const key = parameterKey(p);
  const good = sorted.slice(0, nGood).map((o) => o.params[key]);
  const bad = sorted.slice(nGood).map((o) => o.params[key]);
  const choices = choicesOf(p);
  if (choices) return proposeChoice(choices, good, bad, rng);
  const space = rangeSpace(p as Exclude<SweepParameter, { values: unknown[] } | { variants: unknown[] }>);
  const inSpace = (vs: unknown[]) => vs.filter((v): v is number => typeof v === 'number' && Number.isFinite(v)).map(space.to);
  const l = parzen(inSpace(good), space.lo, space.hi);
  const g = parzen(inSpace(bad), space.lo, space.hi);
  let best = l.sample(rng);
  let bestRatio = -Infinity;
  for (let i = 0; i < CANDIDATES; i++) {
    const x = i === 0 ? best : l.sample(rng);
    const ratio = l.logDensity(x) - g.logDensity(x);
    if (ratio > bestRatio) [best, bestRatio] = [x, ratio];
  }
  return space.from(best);
}

function proposeChoice(values: readonly unknown[], good: unknown[], bad: unknown[], rng: Rng): unknown {
  const keys = values.map((v) => JSON.stringify(v));
  // Counts smoothed by one per value: a value no trial has tried keeps a chance.
  const weights = (vs: unknown[]) => {
    const w = keys.map(() => 1);
    for (const v of vs) {
      const k = keys.indexOf(JSON.stringify(v));
      if (k >= 0) w[k] = (w[k] as number) + 1;
    }
    const sum = w.reduce((a, b) => a + b, 0);
    return w.map((x) => x / sum);
  };
  const l = weights(good);
  const g = weights(bad);
  let best = 0;
  let bestRatio = -Infinity;
  for (let i = 0; i < CANDIDATES; i++) {
    let u = rng();
    let k = 0;
    while (k < l.length - 1 && u >= (l[k] as number)) u -= l[k++] as number;
    const ratio = Math.log(l[k] as number) - Math.log(g[k] as number);
    if (ratio > bestRatio) [best, bestRatio] = [k, ratio];
  }
  return values[best];
}

interface Space {
  lo: number;
  hi: number;
  to: (v: number) => number;
  from: (x: number) => number;
}

function rangeSpace(p: Exclude<SweepParameter, { values: unknown[] } | { variants: unknown[] }>): Space {
  const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
  if ('uniform' in p) {
    const [lo, hi] = p.uniform;
    return { lo, hi, to: (v) => v, from: (x) => clamp(x, lo, hi) };
  }
  if ('logUniform' in p) {
    const [lo, hi] = p.logUniform.map(Math.log) as [number, number];
    return { lo, hi, to: Math.log, from: (x) => clamp(Math.exp(x), p.logUniform[0], p.logUniform[1]) };
  }
  const [lo, hi] = p.intRange;
  return { lo: lo - 0.5, hi: hi + 0.5, to: (v) => v, from: (x) => clamp(Math.round(x), lo, hi) };
}

/**
 * A mixture of Gaussians truncated to [lo, hi]: one per point, its width the larger gap to its
 * neighbours (the range's ends count as neighbours), at least the range / (n + 1); and a prior
 * as wide as the range at its middle, so the density is never zero anywhere in it.
 */
function parzen(points: number[], lo: number, hi: number) {
  const range = hi - lo;
  const mus = [...points.map((x) => Math.min(hi, Math.max(lo, x)))].sort((a, b) => a - b);
  const minSigma = range / (mus.length + 1);
  const parts = mus.map((mu, i) => {
    const left = mu - (i > 0 ? (mus[i - 1] as number) : lo);
    const right = (i < mus.length - 1 ? (mus[i + 1] as number) : hi) - mu;
    return { mu, sigma: Math.min(range, Math.max(minSigma, left, right)) };
  });
  parts.push({ mu: (lo + hi) / 2, sigma: range });
  const mass = parts.map((c) => normalCdf((hi - c.mu) / c.sigma) - normalCdf((lo - c.mu) / c.sigma));
  return {
    sample(rng: Rng): number {
      const c = parts[Math.floor(rng() * parts.length)] as { mu: number; sigma: number };
      for (let tries = 0; tries < 100; tries++) {
        const x = c.mu + c.sigma * gaussian(rng);
        if (x >= lo && x <= hi) return x;
      }
      return Math.min(hi, Math.max(lo, c.mu));
    },
    logDensity(x: number): number {
      let sum = 0;
      parts.forEach((c, i) => {
        const z = (x - c.mu) / c.sigma;
        sum += Math.exp(-0.5 * z * z) / (c.sigma * Math.sqrt(2 * Math.PI) * (mass[i] as number));
      });
      return Math.log(sum / parts.length);
    },
  };
}

/** Box-Muller: a standard normal draw from two uniform ones. */
function gaussian(rng: Rng): number {
  const u = 1 - rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** The standard normal CDF, from erf by Abramowitz and Stegun 7.1.26 (error < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}
