// Public API of the training worker.
export { AllreducePeer } from './allreduce/ring-allreduce';
export type { AllreducePeerOptions, AllreduceStats } from './allreduce/ring-allreduce';
export { segmentBounds, ringSchedule } from './allreduce/segments';
export * from './errors';
