import { FolderSource, packPeopleFolder, readPairsFile, unpackIndex } from '@facenet/core';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import type { DatasetKind, SpecIssue } from './dataset-kind';

/** `<path>/<identity>/<image>` on a path every process can read (a shared volume). */
export const folderSchema = z
  .object({
    kind: z.literal('folder'),
    path: z.string().min(1),
    cropFraction: z.number().gt(0).lte(1).default(1),
    exclude: z.array(z.string()).default([]),
    /** Also exclude every person named in these folds of an LFW-format pairs file: train beside an evaluation on those folds. */
    excludePairsFolds: z
      .object({ pairs: z.string().min(1), folds: z.array(z.number().int().min(1)).min(1) })
      .strict()
      .optional(),
  })
  .strict();

export type FolderDatasetSpec = z.infer<typeof folderSchema>;

/** The people named in some folds (1-based) of an LFW-format pairs file. */
export function peopleOfPairsFolds(pairsFile: string, folds: number[]): string[] {
  const file = readPairsFile(pairsFile);
  const chosen = new Set(folds.map((f) => f - 1));
  return [...new Set(file.pairs.filter((p) => chosen.has(p.fold)).flatMap((p) => [p.a.name, p.b.name]))];
}

export const folderDataset: DatasetKind<FolderDatasetSpec> = {
  kind: 'folder',
  schema: folderSchema,
  errorPath: 'dataset.path',
  files: (spec) => [
    { path: 'dataset.path', value: spec.path },
    ...(spec.excludePairsFolds ? [{ path: 'dataset.excludePairsFolds.pairs', value: spec.excludePairsFolds.pairs }] : []),
  ],
  check(spec) {
    const excluded = spec.excludePairsFolds;
    if (!excluded) return [];
    const issues: SpecIssue[] = [];
    try {
      const folds = readPairsFile(excluded.pairs).folds;
      const beyond = excluded.folds.filter((f) => f > folds);
      if (beyond.length)
        issues.push({ path: 'dataset.excludePairsFolds.folds', message: `the pairs file has ${folds} folds, not ${beyond.join(', ')}` });
    } catch (err) {
      issues.push({ path: 'dataset.excludePairsFolds.pairs', message: (err as Error).message });
    }
    return issues;
  },
  pack: (spec, o) => packPeopleFolder(resolve(spec.path), o),
  source(spec, packed) {
    const exclude = spec.excludePairsFolds
      ? [...spec.exclude, ...peopleOfPairsFolds(spec.excludePairsFolds.pairs, spec.excludePairsFolds.folds)]
      : spec.exclude;
    // Without a stored index (a record from before indexes were stored) the folder is scanned.
    const index = packed && unpackIndex(packed, join(resolve(spec.path), '/'));
    return new FolderSource(spec.path, { cropFraction: spec.cropFraction, exclude, index });
  },
  cropFraction: (spec) => spec.cropFraction,
};
