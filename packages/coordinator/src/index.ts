// Public API of the coordinator.
export { Coordinator, checkEvictionPolicy } from './coordinator';
export type { CoordinatorState } from './coordinator';
export { compileCoordinatorOptions } from './coordinator-options';
export type { CoordinatorOptions, CompiledCoordinatorOptions } from './coordinator-options';
export { planBatch } from './batch-planner';
export { planWorldChange } from './world-change';
export type { WorldChange } from './world-change';
export { JobStore } from './job-store';
export { JobRetention } from './job-retention';
export { transition, canTransition, TRANSITIONS } from './job-lifecycle';
export type { JobEvent } from './job-lifecycle';
export * from './errors';
export { createMetrics } from './metrics';
export type { Metrics } from './metrics';
export { checkpointsToDelete } from './checkpoint-retention';
export { isLoopback, loadTokens, registerAccessControl } from './api/access';
export type { ApiTokens, AccessOptions } from './api/access';
export { queryInteger } from './api/query-integer';
