// Public API of the training worker.
export { AllreducePeer } from './allreduce/ring-allreduce';
export type { AllreduceStats, CollectiveOptions } from './allreduce/ring-allreduce';
export { decodeHalves, encodeHalves, roundToHalf } from './allreduce/fp16';
export { compileAllreduceOptions } from './allreduce/allreduce-options';
export type { AllreduceOptions, CompiledAllreduceOptions } from './allreduce/allreduce-options';
export { segmentBounds, ringSchedule } from './allreduce/segments';
export { SECRET_METADATA } from './allreduce/pull-stream';
export { encodeHello, errorFrame, FrameReader, frameHeader, FrameType } from './allreduce/tcp-frames';
export { facenetProto } from './allreduce/proto';
export * from './errors';
export { WorkerService } from './worker-service';
export type { WorkerState } from './worker-service';
export { compileWorkerOptions } from './worker-options';
export type { WorkerOptions, CompiledWorkerOptions } from './worker-options';
export { StepRunner } from './step-runner';
export type { StepCompute, StepCollective } from './step-runner';
export { ComputeClient } from './compute/compute-client';
export { createWorkerMetrics } from './worker-metrics';
