import { BatchItem, FaceSource, identityClasses, rngFor, samplePK, sampled, shuffled, splitByIdentity, TrainConfig } from '@facenet/core';
import { curriculumAt, CurriculumSpec, MiningPlan } from '@facenet/protocol';

/**
 * The batch of step `step`, split for `world` ranks: a pure function of (seed, step, plan
 * version) and the training index. The batch is cut into the job's V virtual shards by whole
 * identities (fixed composition, independent of W), and rank r takes shards r, r+W, ...
 * So what the job learns does not depend on how many workers run it.
 *
 * With a curriculum and a mining plan, a rising fraction of the P identities comes from the
 * plan as groups (an anchor identity with the identity its mined negatives came from, or its
 * most confusable identity); each group lands in one virtual shard, so every mined triplet
 * can be formed inside a shard. The rest is drawn uniformly.
 */
export function planBatch(
  train: FaceSource,
  config: TrainConfig,
  step: number,
  world: number,
  curriculum?: CurriculumSpec,
  plan?: MiningPlan,
): BatchItem[][][] {
  const shards = curriculum && plan ? curriculumShards(train, config, step, curriculum, plan) : undefined;
  const virtual = shards ?? splitByIdentity(samplePK(train.index, config.batch, config.seed, step), config.virtualShards);
  return Array.from({ length: world }, (_, rank) => virtual.filter((_, v) => v % world === rank));
}

function curriculumShards(
  train: FaceSource,
  config: TrainConfig,
  step: number,
  curriculum: CurriculumSpec,
  plan: MiningPlan,
): BatchItem[][] | undefined {
  const { fraction } = curriculumAt(curriculum, step);
  const { P, K } = config.batch;
  const mined = Math.floor(P * fraction);
  if (mined < 2) return undefined;
  const images = train.index.images;
  const eligible = (i: number) => (images[i]?.length ?? 0) >= 2;
  const rng = rngFor(config.seed, 'curriculum', step, plan.version);
  const chosen = new Set<number>();
  const groups: number[][] = [];
  const tryGroup = (a: number, b: number) => {
    if (chosen.size + 2 > mined || a === b || chosen.has(a) || chosen.has(b) || !eligible(a) || !eligible(b)) return;
    chosen.add(a);
    chosen.add(b);
    groups.push([a, b]);
  };
  // Mined pairs first (the 4P most frequent, in seeded order), then confusable neighbours.
  for (const [a, b] of shuffled(plan.pairs.slice(0, 4 * P), rng)) tryGroup(a, b);
  for (const a of shuffled(Object.keys(plan.confusable).map(Number), rng)) {
    if (chosen.size + 2 > mined) break;
    const b = plan.confusable[String(a)]?.find((x) => !chosen.has(x));
    if (b !== undefined) tryGroup(a, b);
  }
  // P distinct eligible identities hold at least P - chosen.size that are not chosen yet; drawn
  // without walking every identity (this runs every step, on the event loop).
  const rest = sampled(identityClasses(train.index).eligible, P, rng)
    .filter((i) => !chosen.has(i))
    .slice(0, P - chosen.size);
  const out: BatchItem[][] = Array.from({ length: config.virtualShards }, () => []);
  let next = 0;
  const place = (ids: number[]) => {
    const shard = out[next++ % config.virtualShards] as BatchItem[];
    for (const id of ids) {
      for (const key of shuffled(images[id] as string[], rngFor(config.seed, 'pk', step, id)).slice(0, K))
        shard.push({ identity: id, key });
    }
  };
  for (const g of groups) place(g);
  for (const id of rest) place([id]);
  return out;
}
