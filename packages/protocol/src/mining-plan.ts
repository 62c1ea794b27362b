import type { MiningStats } from '@facenet/core';

/**
 * What the miner publishes after mining a checkpoint, versioned per job. Identities are labels
 * of the job's training index (the same on coordinator, workers and miner).
 */
export interface MiningPlan {
  jobId: string;
  version: number;
  /** The checkpoint's step: the planner uses a plan only from this step on. */
  step: number;
  checkpoint: string;
  createdAt: string;
  hardness: number;
  floor: boolean;
  /** (anchor identity, negative identity, mined triplets) by count, most first. */
  pairs: [number, number, number][];
  /** Most confusable identities per identity (nearest centroids). */
  confusable: Record<string, number[]>;
  /** A sample of the mined triplets, for inspection. */
  sample: { anchor: string; positive: string; negative: string; dap: number; dan: number }[];
  stats: MiningStats;
  /** Checkpoint steps that arrived while the miner worked and were skipped for a newer one. */
  skippedSteps: number[];
  timings: { embedMs: number; mineMs: number; images: number };
}

export type PlanSummary = Omit<MiningPlan, 'pairs' | 'confusable' | 'sample'> & { pairCount: number };

export function summarizePlan(p: MiningPlan): PlanSummary {
  const rest: Partial<MiningPlan> = { ...p };
  delete rest.pairs;
  delete rest.confusable;
  delete rest.sample;
  return { ...(rest as PlanSummary), pairCount: p.pairs.length };
}
