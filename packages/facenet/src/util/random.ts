import seedrandom from 'seedrandom';

/** A seeded PRNG returning floats in [0, 1). Built on seedrandom (the PRNG tfjs itself uses). */
export type Rng = () => number;

/** FNV-1a: stable 32-bit hash for deriving seeds from names. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A PRNG that depends only on its key parts, e.g. rngFor(seed, 'batch', step). */
export function rngFor(...parts: (string | number)[]): Rng {
  return seedrandom(parts.join('/'));
}

export function randInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/** Fisher-Yates on a copy. */
export function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const a = items.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    const t = a[i] as T;
    a[i] = a[j] as T;
    a[j] = t;
  }
  return a;
}

/**
 * k distinct items drawn uniformly, in random order: the first k steps of a forward Fisher-Yates,
 * with the swaps kept in a map instead of a copy of `items`. O(k) time and memory, so drawing a
 * batch's P identities from millions costs P draws, not a shuffle of all of them.
 */
export function sampled<T>(items: ArrayLike<T>, k: number, rng: Rng): T[] {
  const n = items.length;
  const count = Math.min(Math.max(0, Math.floor(k)), n);
  const moved = new Map<number, number>(); // position -> index of the item now there
  const out: T[] = [];
  for (let i = 0; i < count; i++) {
    const j = i + randInt(rng, n - i);
    const atJ = moved.get(j) ?? j;
    moved.set(j, moved.get(i) ?? i);
    out.push(items[atJ] as T);
  }
  return out;
}

export function gaussian(rng: Rng): number {
  const u = Math.max(rng(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}
