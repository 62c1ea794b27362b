import { rngFor } from '../util/random';
import { squaredDistance } from './distances';

/** VAL at one FAR over every pair; `val` is null where the impostor pairs cannot resolve the FAR. */
export interface AllPairsPoint {
  farTarget: number;
  val: number | null;
  /** The distance threshold: the largest accepted. */
  threshold: number | null;
  /** Impostor pairs accepted at that threshold (farTarget x impostor pairs scored, rounded down). */
  acceptedImpostors: number;
}

export interface AllPairsReport {
  points: AllPairsPoint[];
  images: number;
  identities: number;
  genuinePairs: number;
  impostorPairs: number;
  /** Impostor pairs scored: all of them, or a uniform sample when there are more than the cap. */
  impostorPairsScored: number;
}

export interface AllPairsOptions {
  /** @default [1e-3, 1e-4] */
  farTargets?: number[];
  /** More impostor pairs than this are sampled (uniformly, seeded). @default 20_000_000 */
  maxImpostorPairs?: number;
  /** @default 1 */
  seed?: number;
}

/**
 * Verification over every pair of a set of embedded images: all genuine (same-identity) pairs and
 * all impostor pairs, so VAL at FAR = 1e-3 or 1e-4 rests on enough impostors to mean something
 * (a fold of 600 listed impostor pairs cannot resolve a FAR below 1/600). Rows with `ok` false
 * (images that failed to decode) are left out.
 */
export function allPairsValFar(
  embeddings: Float32Array,
  dim: number,
  labels: ArrayLike<number>,
  ok: ArrayLike<boolean>,
  o: AllPairsOptions = {},
): AllPairsReport {
  const rows: number[] = [];
  for (let i = 0; i < labels.length; i++) if (ok[i]) rows.push(i);
  const n = rows.length;
  const perIdentity = new Map<number, number>();
  for (const r of rows) perIdentity.set(labels[r] as number, (perIdentity.get(labels[r] as number) ?? 0) + 1);
  let genuinePairs = 0;
  for (const c of perIdentity.values()) genuinePairs += (c * (c - 1)) / 2;
  const impostorPairs = (n * (n - 1)) / 2 - genuinePairs;
  const cap = o.maxImpostorPairs ?? 20_000_000;
  const genuine = new Float32Array(genuinePairs);
  let g = 0;
  let impostor: Float32Array;
  if (impostorPairs <= cap) {
    impostor = new Float32Array(impostorPairs);
    let m = 0;
    for (let a = 0; a < n; a++)
      for (let b = a + 1; b < n; b++) {
        const i = rows[a] as number;
        const j = rows[b] as number;
        const d = squaredDistance(embeddings, i, embeddings, j, dim);
        if (labels[i] === labels[j]) genuine[g++] = d;
        else impostor[m++] = d;
      }
  } else {
    for (let a = 0; a < n; a++)
      for (let b = a + 1; b < n; b++) {
        const i = rows[a] as number;
        const j = rows[b] as number;
        if (labels[i] === labels[j]) genuine[g++] = squaredDistance(embeddings, i, embeddings, j, dim);
      }
    impostor = new Float32Array(cap);
    const rng = rngFor(o.seed ?? 1, 'all-pairs-impostors');
    for (let m = 0; m < cap;) {
      const i = rows[Math.floor(rng() * n)] as number;
      const j = rows[Math.floor(rng() * n)] as number;
      if (labels[i] !== labels[j]) impostor[m++] = squaredDistance(embeddings, i, embeddings, j, dim);
    }
  }
  impostor.sort();
  genuine.sort();
  const points = (o.farTargets ?? [1e-3, 1e-4]).map((farTarget): AllPairsPoint => {
    const accepted = Math.floor(farTarget * impostor.length);
    // Accept every distance below the (accepted + 1)-th smallest impostor distance.
    if (accepted < 1 || genuine.length === 0) return { farTarget, val: null, threshold: null, acceptedImpostors: 0 };
    const bound = impostor[accepted] as number;
    const threshold = impostor[accepted - 1] as number;
    let lo = 0;
    let hi = genuine.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((genuine[mid] as number) < bound) lo = mid + 1;
      else hi = mid;
    }
    return { farTarget, val: lo / genuine.length, threshold, acceptedImpostors: accepted };
  });
  return { points, images: n, identities: perIdentity.size, genuinePairs, impostorPairs, impostorPairsScored: impostor.length };
}
