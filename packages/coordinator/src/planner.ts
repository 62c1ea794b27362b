import { BatchItem, FaceSource, samplePK, splitByIdentity, TrainConfig } from '@facenet/core';

/**
 * The batch of step `step`, split for `world` ranks: a pure function of (seed, step) and the
 * training index. The batch is cut into the job's V virtual shards by whole identities (fixed
 * composition, independent of W), and rank r takes shards r, r+W, r+2W, ... So what the job
 * learns does not depend on how many workers run it.
 */
export function planStep(train: FaceSource, config: TrainConfig, step: number, world: number): BatchItem[][][] {
  const batch = samplePK(train.index, config.batch, config.seed, step);
  const shards = splitByIdentity(batch, config.virtualShards);
  return Array.from({ length: world }, (_, rank) => shards.filter((_, v) => v % world === rank));
}
