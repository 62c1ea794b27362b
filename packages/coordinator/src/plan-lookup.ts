import IORedis from 'ioredis';
import { MiningPlan, redisKeys, miningPlanSchema, parseStored } from '@facenet/protocol';
import { JobRecord } from '@facenet/protocol';

export type PlanSwitch = JobRecord['planSwitches'][number];

/** Which mining plan a step is planned with, read from the miner's plans in Redis (cached). */
export class PlanLookup {
  private readonly keys: ReturnType<typeof redisKeys>;
  private readonly plans = new Map<string, MiningPlan | null>();

  constructor(
    private readonly redis: IORedis,
    prefix: string,
    private readonly log: (line: string) => void,
  ) {
    this.keys = redisKeys(prefix);
  }

  private async load(jobId: string, version: number): Promise<MiningPlan | undefined> {
    const key = `${jobId}:${version}`;
    if (!this.plans.has(key)) {
      const raw = await this.redis.get(this.keys.plan(jobId, version));
      this.plans.set(key, raw ? parseStored(miningPlanSchema, raw, `mining plan ${key}`) : null);
    }
    return this.plans.get(key) ?? undefined;
  }

  /**
   * The mining plan for step s: on a replayed step (below the high-water mark) the plan that
   * was in force then, so resumed runs reproduce; otherwise the newest plan whose checkpoint is
   * not ahead of s. No plan (miner down, slow, or off): uniform batches; a step never waits.
   */
  async planFor(job: JobRecord, s: number): Promise<{ plan?: MiningPlan; switchTo?: PlanSwitch }> {
    if (!job.spec.curriculum.enabled) return {};
    const recorded = [...job.planSwitches].reverse().find((p) => p.fromStep <= s);
    const recordedPlan = recorded && (await this.load(recorded.jobId, recorded.version));
    if (s < job.highWater) return { plan: recordedPlan };
    let newest: MiningPlan | undefined;
    try {
      for (const v of await this.redis.zrevrange(this.keys.plans(job.id), '0', '9')) {
        const p = await this.load(job.id, Number(v));
        if (p && p.step <= s) {
          newest = p;
          break;
        }
      }
    } catch (err) {
      this.log(`[coordinator] job ${job.id}: cannot read mining plans (${(err as Error).message}); planning uniformly`);
    }
    if (!newest) return { plan: recordedPlan };
    const switched = !recorded || recorded.jobId !== job.id || recorded.version !== newest.version;
    return { plan: newest, switchTo: switched ? { fromStep: s, jobId: job.id, version: newest.version } : undefined };
  }
}
