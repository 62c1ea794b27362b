import { IdentityIndex } from '../data/face-source';
import { rngFor, shuffled } from '../util/random';

/** Verification pairs over a list of images: indices into `keys`, labels and folds. */
export interface PairSet {
  keys: string[];
  pairs: [number, number][];
  same: boolean[];
  fold: number[];
}

export interface HoldoutPairOptions {
  /** Cap on different-identity pairs (all same-identity pairs are kept). @default 20000 */
  maxDifferentPairs?: number;
  /** @default 10 */
  folds?: number;
  /** @default 1 */
  seed?: number;
}

/**
 * Pairs among the images of held-out identities: every same-identity pair and (up to a cap)
 * different-identity pairs, dealt into folds by identity of the first image so folds share
 * no anchor identity. Use identities the model never trained on.
 */
export function holdoutPairs(index: IdentityIndex, identities: number[], o: HoldoutPairOptions = {}): PairSet {
  const folds = o.folds ?? 10;
  const rng = rngFor(o.seed ?? 1, 'holdout-pairs');
  const keys: string[] = [];
  const owner: number[] = [];
  for (const id of identities)
    for (const k of index.images[id] ?? []) {
      keys.push(k);
      owner.push(id);
    }
  const foldOf = new Map(shuffled(identities, rng).map((id, i) => [id, i % folds]));
  const same: [number, number][] = [];
  const diff: [number, number][] = [];
  for (let i = 0; i < keys.length; i++) {
    for (let j = i + 1; j < keys.length; j++) (owner[i] === owner[j] ? same : diff).push([i, j]);
  }
  const cap = o.maxDifferentPairs ?? 20000;
  const diffKept = diff.length > cap ? shuffled(diff, rng).slice(0, cap) : diff;
  const pairs = [...same, ...diffKept];
  return {
    keys,
    pairs,
    same: pairs.map((_, i) => i < same.length),
    fold: pairs.map(([i]) => foldOf.get(owner[i] as number) as number),
  };
}
