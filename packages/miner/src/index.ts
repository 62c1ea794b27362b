// Public API of the miner.
export { MinerService } from './miner-service';
export type { MinerState } from './miner-service';
export { CheckpointMiner } from './mine-checkpoint';
export type { MiningJob } from './mine-checkpoint';
export { compileMinerOptions } from './miner-options';
export type { MinerOptions, CompiledMinerOptions } from './miner-options';
export * from './errors';
export { createMinerMetrics } from './miner-metrics';
