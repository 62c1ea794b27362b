/**
 * Who exchanges with whom in a recursive-doubling allreduce: the latency-optimal collective for
 * small vectors (log2 W rounds of the whole vector, against the ring's 2(W-1) rounds of 1/W of
 * it). It lives in the contract because the coordinator must tell each rank its partners'
 * addresses, and each rank must accept pulls from exactly those partners.
 *
 * W not a power of two (MPICH's scheme): with p the largest power of two <= W and e = W - p,
 * ranks 0..2e-1 pair up first: each even rank sends its vector to the odd rank after it and
 * sits out; the p remaining ranks (the odd ones below 2e, and all from 2e on) run recursive
 * doubling among themselves; at the end each odd rank sends the result back to its even rank.
 */
/** 'ring' for bandwidth, 'recursive-doubling' for latency, 'auto' picks by vector size and W. */
export const ALLREDUCE_ALGORITHMS = ['auto', 'ring', 'recursive-doubling'] as const;
export type AllreduceAlgorithm = (typeof ALLREDUCE_ALGORITHMS)[number];
/** What actually runs: 'auto' resolved. */
export type CollectiveAlgorithm = Exclude<AllreduceAlgorithm, 'auto'>;

export interface DoublingStep {
  /** Same number on both ends of a link: 0 fold-in, 1..log2(p) exchanges, log2(p)+1 fold-out. */
  step: number;
  /** The rank this rank sends its whole vector to in this step. */
  sendTo?: number;
  /** The rank whose vector this rank receives in this step. */
  receiveFrom?: number;
  /** What the received vector does: added to this rank's, or replaces it (the finished sum). */
  receive?: 'add' | 'copy';
}

export function recursiveDoublingSchedule(rank: number, world: number): DoublingStep[] {
  if (world <= 1) return [];
  const levels = Math.floor(Math.log2(world));
  const p = 1 << levels;
  const extra = world - p;
  const steps: DoublingStep[] = [];
  const folded = rank < 2 * extra;
  // This rank's place among the p ranks that run the doubling; undefined for a rank that sits out.
  let virtual: number | undefined = rank - extra;
  if (folded) {
    virtual = rank % 2 === 1 ? rank >> 1 : undefined;
    steps.push(rank % 2 === 0 ? { step: 0, sendTo: rank + 1 } : { step: 0, receiveFrom: rank - 1, receive: 'add' });
  }
  const real = (v: number) => (v < extra ? 2 * v + 1 : v + extra);
  if (virtual !== undefined)
    for (let k = 0; k < levels; k++) {
      const partner = real(virtual ^ (1 << k));
      steps.push({ step: k + 1, sendTo: partner, receiveFrom: partner, receive: 'add' });
    }
  if (folded)
    steps.push(rank % 2 === 0 ? { step: levels + 1, receiveFrom: rank + 1, receive: 'copy' } : { step: levels + 1, sendTo: rank - 1 });
  return steps;
}

/** The ranks `rank` receives from in recursive doubling (their addresses go in its shard job). */
export function doublingSources(rank: number, world: number): number[] {
  return [...new Set(recursiveDoublingSchedule(rank, world).flatMap((s) => (s.receiveFrom === undefined ? [] : [s.receiveFrom])))];
}

/** The ranks that may pull from `rank` in recursive doubling (those it sends to). */
export function doublingSinks(rank: number, world: number): number[] {
  return [...new Set(recursiveDoublingSchedule(rank, world).flatMap((s) => (s.sendTo === undefined ? [] : [s.sendTo])))];
}
