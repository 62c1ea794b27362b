import { rngFor } from '@facenet/core';
import type { SweepParameter, SweepSpec } from '@facenet/protocol';
import { Observation, proposeParameter } from './tpe';

/** How many trials the search can produce: the grid's size, or unbounded for random and tpe. */
export function searchSize(spec: SweepSpec): number {
  if (spec.search.kind !== 'grid') return Infinity;
  return spec.parameters.reduce((n, p) => n * ('values' in p ? p.values.length : 1), 1);
}

function draw(p: SweepParameter, rng: () => number): unknown {
  if ('values' in p) return p.values[Math.floor(rng() * p.values.length)];
  if ('uniform' in p) return p.uniform[0] + rng() * (p.uniform[1] - p.uniform[0]);
  if ('logUniform' in p) {
    const [lo, hi] = p.logUniform;
    return Math.exp(Math.log(lo) + rng() * (Math.log(hi) - Math.log(lo)));
  }
  const [lo, hi] = p.intRange;
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/**
 * The parameters of trial `index`: the index-th combination of the grid (the last parameter
 * varies fastest); a draw seeded by (search seed, index); or, for tpe once `startupTrials`
 * trials have finished with a score, the Parzen estimators' proposal from those `observations`
 * (random draws until then). The caller stores what is proposed with the trial, so a sweep resumed
 * after a coordinator restart does not propose a trial again. Keys are the parameters' paths.
 */
export function trialParameters(spec: SweepSpec, index: number, observations: readonly Observation[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const search = spec.search;
  if (search.kind === 'grid') {
    let rest = index;
    for (let i = spec.parameters.length - 1; i >= 0; i--) {
      const p = spec.parameters[i] as Extract<SweepParameter, { values: unknown[] }>;
      out[p.path] = p.values[rest % p.values.length];
      rest = Math.floor(rest / p.values.length);
    }
    return Object.fromEntries(spec.parameters.map((p) => [p.path, out[p.path]]));
  }
  if (search.kind === 'tpe' && observations.length >= Math.max(2, search.startupTrials)) {
    const rng = rngFor('sweep-tpe', search.seed, index);
    for (const p of spec.parameters) out[p.path] = proposeParameter(p, observations, search.gamma, rng);
    return out;
  }
  const rng = rngFor('sweep', search.seed, index);
  for (const p of spec.parameters) out[p.path] = draw(p, rng);
  return out;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A deep copy of `base` with each dotted path set to its value (missing objects on the way are created). */
export function withParameters(base: Record<string, unknown>, params: Record<string, unknown>): Record<string, unknown> {
  const out = structuredClone(base);
  for (const [path, value] of Object.entries(params)) {
    const keys = path.split('.');
    let node: Record<string, unknown> = out;
    for (const k of keys.slice(0, -1)) {
      if (!isObj(node[k])) node[k] = {};
      node = node[k] as Record<string, unknown>;
    }
    node[keys[keys.length - 1] as string] = value;
  }
  return out;
}
