import { ConfigError } from '../errors';
import { IdentityIndex, identitySizes } from './face-source';
import { rngFor, sampled, shuffled } from '../util/random';

export interface PKOptions {
  /** Identities per batch. @default 45 (the paper's ~1,800 faces with K = 40) */
  P?: number;
  /** Images per identity, at most. @default 40 */
  K?: number;
  /** Extra faces from one-image identities, serving only as negatives. @default 0 */
  singletonNegatives?: number;
}

export type PKConfig = Required<PKOptions>;

export function compilePKOptions(o: PKOptions = {}): PKConfig {
  const c: PKConfig = { P: o.P ?? 45, K: o.K ?? 40, singletonNegatives: o.singletonNegatives ?? 0 };
  if (!Number.isInteger(c.P) || c.P < 2 || c.P > 10_000)
    throw new ConfigError('batch.P', `must be an integer in [2, 10000] (negatives need a second identity), got ${c.P}`);
  if (!Number.isInteger(c.K) || c.K < 2 || c.K > 1000)
    throw new ConfigError('batch.K', `must be an integer in [2, 1000] (a positive needs a second image), got ${c.K}`);
  if (!Number.isInteger(c.singletonNegatives) || c.singletonNegatives < 0 || c.singletonNegatives > 100_000) {
    throw new ConfigError('batch.singletonNegatives', `must be an integer in [0, 100000], got ${c.singletonNegatives}`);
  }
  if (c.P * c.K + c.singletonNegatives > 200_000)
    throw new ConfigError('batch.P', `a batch of P x K + singletonNegatives = ${c.P * c.K + c.singletonNegatives} faces exceeds 200000`);
  return c;
}

export interface BatchItem {
  /** Label: the identity's index in the source. */
  identity: number;
  key: string;
}

export interface PKBatch {
  step: number;
  /** The P anchor-capable identities, in batch order. */
  identities: number[];
  items: BatchItem[];
}

/** Identities by size, worked out once per index: a batch is drawn every step. */
const classesOf = new WeakMap<IdentityIndex, { eligible: number[]; singletons: number[] }>();

/** The identities with two or more images (anchor-capable) and those with one, once per index. */
export function identityClasses(index: IdentityIndex): { eligible: number[]; singletons: number[] } {
  let c = classesOf.get(index);
  if (!c) {
    const sizes = identitySizes(index);
    c = { eligible: [], singletons: [] };
    for (let i = 0; i < sizes.length; i++) {
      if ((sizes[i] as number) >= 2) c.eligible.push(i);
      else if (sizes[i] === 1) c.singletons.push(i);
    }
    classesOf.set(index, c);
  }
  return c;
}

/**
 * The identity-balanced batch of step `step`: P identities with two or more images, up to K
 * images each, plus optional one-image identities as negatives. A pure function of
 * (index, options, seed, step), so every process that plans step s draws the same batch. It runs
 * on the coordinator's event loop every step, so it costs O(P x K), not O(identities): the
 * identities are drawn by `sampled` (a shuffle of all of them took 11-40 ms per call at 100,000
 * identities).
 */
export function samplePK(index: IdentityIndex, options: PKConfig, seed: number, step: number): PKBatch {
  const rng = rngFor(seed, 'pk', step);
  const { eligible, singletons } = identityClasses(index);
  if (eligible.length < 2) {
    throw new ConfigError('dataset', `needs at least 2 identities with 2+ images, found ${eligible.length}`);
  }
  const identities = sampled(eligible, options.P, rng);
  const items: BatchItem[] = [];
  for (const id of identities) {
    for (const key of shuffled(index.images[id] as string[], rng).slice(0, options.K)) items.push({ identity: id, key });
  }
  for (const id of sampled(singletons, options.singletonNegatives, rng)) {
    items.push({ identity: id, key: (index.images[id] as string[])[0] as string });
  }
  return { step, identities, items };
}

/**
 * Splits a batch by whole identities into `shards` groups of near-equal size (identity-balanced
 * virtual shards): every anchor's positives stay in its shard. Singleton negatives are dealt
 * round-robin.
 */
export function splitByIdentity(batch: PKBatch, shards: number): BatchItem[][] {
  const out: BatchItem[][] = Array.from({ length: shards }, () => []);
  const shardOf = new Map<number, number>();
  batch.identities.forEach((id, i) => shardOf.set(id, i % shards));
  let rr = 0;
  for (const item of batch.items) {
    const s = shardOf.get(item.identity) ?? rr++ % shards;
    (out[s] as BatchItem[]).push(item);
  }
  return out;
}
