import { rngFor } from '@facenet/core';
import { choicesOf, parameterKey, SweepParameter, SweepSpec } from '@facenet/protocol';
import { Observation, proposeParameter } from './tpe';

/** How many trials the search can produce: the grid's size, or unbounded for random and tpe. */
export function searchSize(spec: SweepSpec): number {
  if (spec.search.kind !== 'grid') return Infinity;
  return spec.parameters.reduce((n, p) => n * (choicesOf(p)?.length ?? 1), 1);
}

function draw(p: SweepParameter, rng: () => number): unknown {
  const choices = choicesOf(p);
  if (choices) return choices[Math.floor(rng() * choices.length)];
  if ('uniform' in p) return p.uniform[0] + rng() * (p.uniform[1] - p.uniform[0]);
  if ('logUniform' in p) {
    const [lo, hi] = p.logUniform;
    return Math.exp(Math.log(lo) + rng() * (Math.log(hi) - Math.log(lo)));
  }
  const [lo, hi] = (p as Extract<SweepParameter, { intRange: unknown }>).intRange;
  return lo + Math.floor(rng() * (hi - lo + 1));
}

/**
 * The parameters of trial `index`: the index-th combination of the grid (the last parameter
 * varies fastest); a draw seeded by (search seed, index); or, for tpe once `startupTrials`
 * trials have finished with a score, the Parzen estimators' proposal from those `observations`
 * (random draws until then). The caller stores what is proposed with the trial, so a sweep resumed
 * after a coordinator restart does not propose a trial again. Keys are the parameters' paths (a
 * variants parameter's name).
 */
export function trialParameters(spec: SweepSpec, index: number, observations: readonly Observation[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const search = spec.search;
  if (search.kind === 'grid') {
    let rest = index;
    for (let i = spec.parameters.length - 1; i >= 0; i--) {
      const p = spec.parameters[i] as SweepParameter;
      const choices = choicesOf(p) as readonly unknown[];
      out[parameterKey(p)] = choices[rest % choices.length];
      rest = Math.floor(rest / choices.length);
    }
    return Object.fromEntries(spec.parameters.map((p) => [parameterKey(p), out[parameterKey(p)]]));
  }
  if (search.kind === 'tpe' && observations.length >= Math.max(2, search.startupTrials)) {
    const rng = rngFor('sweep-tpe', search.seed, index);
    for (const p of spec.parameters) out[parameterKey(p)] = proposeParameter(p, observations, search.gamma, rng);
    return out;
  }
  const rng = rngFor('sweep', search.seed, index);
  for (const p of spec.parameters) out[parameterKey(p)] = draw(p, rng);
  return out;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` merged into `base`: objects merge key by key, anything else replaces. */
export function deepMerge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObj(v) && isObj(out[k]) ? deepMerge(out[k], v) : structuredClone(v);
  return out;
}

/** A deep copy of `base` with each dotted path set to its value (missing objects on the way are created). */
export function withParameters(base: Obj, params: Obj): Obj {
  const out = structuredClone(base);
  for (const [path, value] of Object.entries(params)) {
    const keys = path.split('.');
    let node: Obj = out;
    for (const k of keys.slice(0, -1)) {
      if (!isObj(node[k])) node[k] = {};
      node = node[k] as Obj;
    }
    node[keys[keys.length - 1] as string] = value;
  }
  return out;
}

/**
 * The job spec of a trial: the sweep's base with each chosen variant's fields merged in (in the
 * parameters' order), then each path parameter set.
 */
export function trialSpec(spec: SweepSpec, params: Obj): Obj {
  let out: Obj = structuredClone(spec.base);
  const paths: Obj = {};
  for (const p of spec.parameters) {
    const value = params[parameterKey(p)];
    if (!('variants' in p)) paths[p.path] = value;
    else {
      const variant = p.variants.find((v) => v.name === value);
      if (variant) out = deepMerge(out, variant.set);
    }
  }
  return withParameters(out, paths);
}
