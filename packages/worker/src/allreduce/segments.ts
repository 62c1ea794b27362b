/** [start, end) of each of W near-equal contiguous segments of n elements (some may be empty). */
export function segmentBounds(n: number, world: number): [number, number][] {
  const base = Math.floor(n / world);
  const extra = n % world;
  const out: [number, number][] = [];
  let start = 0;
  for (let i = 0; i < world; i++) {
    const len = base + (i < extra ? 1 : 0);
    out.push([start, start + len]);
    start += len;
  }
  return out;
}

const mod = (a: number, m: number) => ((a % m) + m) % m;

/**
 * Ring schedule for rank r of W over 2(W-1) rounds. Reduce-scatter round k sends segment r-k
 * and adds the received segment r-k-1; after it rank r owns the full sum of segment r+1.
 * All-gather round k sends segment r+1-k and copies in segment r-k.
 */
export function ringSchedule(rank: number, world: number): { round: number; send: number; receive: number; reduce: boolean }[] {
  const rounds = [];
  for (let k = 0; k < world - 1; k++)
    rounds.push({ round: k, send: mod(rank - k, world), receive: mod(rank - k - 1, world), reduce: true });
  for (let k = 0; k < world - 1; k++)
    rounds.push({ round: world - 1 + k, send: mod(rank + 1 - k, world), receive: mod(rank - k, world), reduce: false });
  return rounds;
}
