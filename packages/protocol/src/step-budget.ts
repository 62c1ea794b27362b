import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { rankLoad, stepFootprint, TrainConfig } from '@facenet/core';

/** What a worker can hold and how fast it computes, advertised in its registration. */
export interface WorkerBudget {
  /** Bytes a step may use at its peak. */
  memoryBytes: number;
  /** Training throughput it can count on, GFLOP/s. */
  gflops: number;
  /** The largest buffer its GPU binds (webgpu workers: maxStorageBufferBindingSize); absent: no such limit. */
  maxBufferBytes?: number;
}

/** Data time per pixel decoded or drawn (synthetic faces: ~0.6 us measured on this project's CI machine). */
const SECONDS_PER_DECODED_PIXEL = 1e-6;

/** Training GFLOP/s a backend sustains on this project's nets (wasm measured 6.5 on 2 CPU cores). */
export function defaultGflops(backend: string): number {
  return backend === 'tensorflow' ? 50 : 5;
}

/** Three quarters of the memory this process may use: the machine's, or its cgroup's limit if lower. */
export function defaultMemoryBudget(): number {
  let limit = totalmem();
  try {
    const max = readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    if (/^\d+$/.test(max)) limit = Math.min(limit, Number(max));
  } catch {
    // no cgroup v2 limit readable: the machine's memory
  }
  return Math.floor(limit * 0.75);
}

/** A step's estimated cost on one rank of a world of `worldSize`. */
export function stepEstimate(
  train: TrainConfig,
  worldSize: number,
  budget: WorkerBudget,
): { memoryBytes: number; seconds: number; images: number; largestTensorBytes: number } {
  const load = rankLoad(train, worldSize);
  const f = stepFootprint(train, load);
  return {
    memoryBytes: f.memoryBytes,
    seconds: f.flops / (budget.gflops * 1e9) + f.decodedPixels * SECONDS_PER_DECODED_PIXEL,
    images: load.imagesOnRank,
    largestTensorBytes: f.largestTensorBytes,
  };
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 2 : 1)} GiB`;

/**
 * Why a step of this configuration cannot run on a worker with `budget` in a world of
 * `worldSize` (undefined: it fits): more memory than the worker has, or longer than
 * `stepTimeoutMs`, after which the coordinator would abandon every step.
 */
export function budgetShortfall(train: TrainConfig, worldSize: number, budget: WorkerBudget, stepTimeoutMs?: number): string | undefined {
  const e = stepEstimate(train, worldSize, budget);
  const m = train.model;
  const what = `a step of ${e.images} images of ${m.imageSize} px per rank (${m.architecture}, width ${m.width}, embeddingDim ${m.embeddingDim}, W=${worldSize})`;
  if (e.memoryBytes > budget.memoryBytes)
    return `${what} needs ~${gib(e.memoryBytes)}; the largest worker budget is ${gib(budget.memoryBytes)}`;
  if (budget.maxBufferBytes !== undefined && e.largestTensorBytes > budget.maxBufferBytes)
    return `${what} has a tensor of ~${gib(e.largestTensorBytes)} in one shard; the GPU binds at most ${gib(budget.maxBufferBytes)} as one buffer (maxStorageBufferBindingSize): use more virtualShards or smaller images`;
  if (stepTimeoutMs !== undefined && e.seconds * 1000 > stepTimeoutMs)
    return `${what} takes ~${e.seconds.toFixed(0)} s at ${budget.gflops} GFLOP/s; steps time out after ${(stepTimeoutMs / 1000).toFixed(0)} s`;
  return undefined;
}
