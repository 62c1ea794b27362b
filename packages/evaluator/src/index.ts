// @facenet/evaluator: scores every checkpoint of a job on verification pairs (VAL/FAR, accuracy, AUC).
export { EvaluatorService } from './evaluator-service';
export type { EvaluatorState } from './evaluator-service';
export { compileEvaluatorOptions } from './evaluator-options';
export type { EvaluatorOptions, CompiledEvaluatorOptions } from './evaluator-options';
export { evaluationSetFor } from './evaluation-set';
export type { EvaluationSet } from './evaluation-set';
export { EvaluationSetError } from './errors';
export { createEvaluatorMetrics } from './metrics';
