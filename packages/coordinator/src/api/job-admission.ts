import { existsSync, statSync } from 'node:fs';
import { compileTrainOptions, ConfigError, readPairsFile, SpecError, TrainConfig, TrainOptions } from '@facenet/core';
import {
  allowedLocation,
  budgetShortfall,
  datasetKind,
  insideRoots,
  JobSpec,
  OUTSIDE_ROOTS,
  parseJobSpec,
  WorkerBudget,
} from '@facenet/protocol';
import { AdmissionClient, DataVerdict, Issue } from './admission';

/** What admitting a job needs of the coordinator. */
export interface AdmissionDeps {
  /** Folders jobs may read data from. */
  dataRoots: string[];
  /** Checks a spec's data off the event loop. */
  admission: AdmissionClient;
  /** The budget a step must fit: the largest registered worker's, or the assumed one while none is. */
  workerBudget: () => Promise<WorkerBudget>;
  /** Steps not finished in this time are abandoned. */
  stepTimeoutMs: number;
  /** The queues jobs may name. */
  queues: string[];
}

/** A spec that passed every check that does not read the dataset (admitSpec's first phase). */
export interface CheckedSpec {
  spec: JobSpec;
  train: TrainConfig | undefined;
  issues: Issue[];
  /** Whether its data must be read (no issue so far): the admission thread's part. */
  readsData: boolean;
  /** Where the data's issues go in `issues` (after the spec's own, before the evaluation's). */
  dataAt: number;
}

/**
 * Full validation of a job spec: structure (zod), ranges (compile), locations inside the data
 * roots or URLs, the dataset kind's checks, the data itself (indexed in the admission thread), the
 * evaluation files, and that a step fits the workers. Throws SpecError naming every bad field.
 */
export async function admitSpec(
  body: unknown,
  d: AdmissionDeps,
): Promise<{ spec: JobSpec; train: TrainConfig; index?: DataVerdict['index'] }> {
  const checked = checkSpec(body, d);
  const data = checked.readsData ? await d.admission.check(checked.spec, checked.train) : undefined;
  return finishAdmission(checked, data, d);
}

/**
 * The first phase: everything but the data. Throws SpecError at once for a malformed spec, an
 * unknown queue or a location outside the data roots; other issues are returned, to be listed
 * with the data's.
 */
export function checkSpec(body: unknown, d: AdmissionDeps): CheckedSpec {
  const roots = d.dataRoots;
  const spec = parseJobSpec(body);
  const kind = datasetKind(spec.dataset);
  const issues: Issue[] = [];
  if (!d.queues.includes(spec.queue))
    throw new SpecError([{ path: 'queue', message: `no queue "${spec.queue}" (this cluster has ${d.queues.join(', ')}; FACENET_QUEUES)` }]);
  // Locations outside the data roots (paths) or data URLs (a dataset's remote location) are
  // refused before anything looks at them; evaluation files are paths only.
  const evaluationFiles = [
    spec.evaluation.pairs ? { path: 'evaluation.pairs', value: spec.evaluation.pairs } : undefined,
    spec.evaluation.images ? { path: 'evaluation.images', value: spec.evaluation.images } : undefined,
  ].filter((x): x is { path: string; value: string } => !!x);
  const outside = [
    ...kind.files(spec.dataset).filter((x) => !allowedLocation(x.value, roots)),
    ...evaluationFiles.filter((x) => !insideRoots(x.value, roots)),
  ];
  if (outside.length) throw new SpecError(outside.map((x) => ({ path: x.path, message: `${x.value} ${OUTSIDE_ROOTS}` })));
  let train: TrainConfig | undefined;
  try {
    train = compileTrainOptions({ ...(spec.train as TrainOptions), checkpointDir: undefined });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    issues.push({ path: `train.${err.field}`, message: err.message.slice(err.field.length + 2) });
  }
  const before = issues.length;
  issues.push(...(kind.check?.(spec.dataset) ?? []));
  // Scanning a folder, reading a manifest or indexing a 2M-image synthetic set takes seconds: the
  // admission thread's work, not this event loop's.
  const readsData = issues.length === before;
  const dataAt = issues.length;
  issues.push(...evaluationIssues(spec));
  if (train && spec.worldSize > train.virtualShards) {
    issues.push({
      path: 'worldSize',
      message: `${spec.worldSize} ranks but only ${train.virtualShards} virtual shards (train.virtualShards); every rank needs one`,
    });
  }
  return { spec, train, issues, readsData, dataAt };
}

/** The second phase: the data's verdict, the classes it gives, and that a step fits the workers. */
export async function finishAdmission(
  checked: CheckedSpec,
  data: DataVerdict | undefined,
  d: AdmissionDeps,
): Promise<{ spec: JobSpec; train: TrainConfig; index?: DataVerdict['index'] }> {
  const { spec } = checked;
  const train = checked.train && structuredClone(checked.train);
  const issues = [...checked.issues.slice(0, checked.dataAt), ...(data?.issues ?? []), ...checked.issues.slice(checked.dataAt)];
  if (train?.classification && data?.classes !== undefined) train.classification.classes = data.classes;
  if (train && !issues.length) {
    // The smallest world it may run on carries the most per rank.
    const shortfall = budgetShortfall(train, spec.minWorldSize ?? spec.worldSize, await d.workerBudget(), d.stepTimeoutMs);
    if (shortfall) issues.push({ path: 'train', message: shortfall });
  }
  if (issues.length || !train) throw new SpecError(issues);
  return { spec, train, index: data?.index };
}

/** The evaluation pairs file must parse and its images folder exist (the evaluator reads them later). */
function evaluationIssues(spec: JobSpec): Issue[] {
  const e = spec.evaluation;
  if (!e.enabled || !e.pairs || !e.images) return [];
  const issues: Issue[] = [];
  try {
    const file = readPairsFile(e.pairs);
    const bad = (e.folds ?? []).filter((f) => f > file.folds);
    if (bad.length) issues.push({ path: 'evaluation.folds', message: `${e.pairs} has ${file.folds} folds; no fold ${bad.join(', ')}` });
  } catch (err) {
    issues.push({ path: 'evaluation.pairs', message: (err as Error).message });
  }
  if (!existsSync(e.images) || !statSync(e.images).isDirectory())
    issues.push({ path: 'evaluation.images', message: `${e.images} is not a folder` });
  return issues;
}
