import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { InferenceError } from '../errors';
import type { ExportMetadata } from './export-model';

/**
 * Readers of what `facenet export` writes, for the processes that load an export (`facenet
 * serve`, `facenet embed`). An export folder may come from anywhere, so its files are outside
 * input: parsed here into the fields those processes use, each bounded, or refused with an
 * InferenceError that names the folder and the field.
 */
const finite = z.number().refine(Number.isFinite, 'must be a finite number');

const exportMetadataSchema = z.looseObject({
  format: z.literal('facenet-export/1'),
  model: z.looseObject({
    architecture: z.string().min(1).max(100),
    imageSize: z.number().int().min(8).max(1024),
    embeddingDim: z.number().int().min(1).max(65536),
  }),
  preprocessing: z.looseObject({ cropFraction: z.number().gt(0).lte(1) }),
  verification: z.looseObject({ threshold: finite, accuracy: finite, step: z.number().int().min(0) }).optional(),
});

/** The largest weights file an export may name (a face model is a few MB to a few hundred). */
const MAX_WEIGHTS_BYTES = 2 ** 31 - 1;

function jsonOf(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InferenceError(`${where}: not JSON (${(err as Error).message})`);
  }
}

function refusal(where: string, error: z.ZodError): InferenceError {
  const issue = error.issues[0];
  return new InferenceError(`${where}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
}

/** facenet.json of an export folder, checked. */
export async function readExportMetadata(dir: string): Promise<ExportMetadata> {
  const where = join(dir, 'facenet.json');
  let text: string;
  try {
    text = await readFile(where, 'utf8');
  } catch (err) {
    throw new InferenceError(`${dir} is not a facenet export (no readable facenet.json: ${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  const r = exportMetadataSchema.safeParse(jsonOf(text, where));
  if (!r.success) throw refusal(where, r.error);
  return r.data as unknown as ExportMetadata;
}

const weightSpecSchema = z.looseObject({
  name: z.string().min(1),
  shape: z
    .array(
      z
        .number()
        .int()
        .min(0)
        .max(2 ** 31),
    )
    .max(8),
  dtype: z.enum(['float32', 'int32']),
});

const tfjsModelSchema = z.looseObject({
  format: z.string().optional(),
  modelTopology: z.looseObject({}),
  weightsManifest: z
    .array(
      z.looseObject({
        // One weights file, a plain name beside model.json (never a path out of the folder).
        paths: z.tuple([
          z.string().refine((p) => p === basename(p) && p !== '..' && p !== '.' && p !== '', 'must name a file beside model.json'),
        ]),
        weights: z.array(weightSpecSchema).max(100_000),
      }),
    )
    .length(1, 'expected one weights group, as facenet export writes'),
});

export interface TfjsExportFiles {
  modelTopology: object;
  format?: string;
  weightSpecs: z.infer<typeof weightSpecSchema>[];
  /** The weights file's bytes, exactly as many as the specs describe. */
  weightData: ArrayBuffer;
}

/** model.json and its weights file of a TensorFlow.js export, checked against each other before any is loaded. */
export async function readTfjsExport(dir: string): Promise<TfjsExportFiles> {
  const where = join(dir, 'model.json');
  let text: string;
  try {
    text = await readFile(where, 'utf8');
  } catch (err) {
    throw new InferenceError(
      `${dir} is not a TensorFlow.js export (no readable model.json: ${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
  const r = tfjsModelSchema.safeParse(jsonOf(text, where));
  if (!r.success) throw refusal(where, r.error);
  const group = r.data.weightsManifest[0] as (typeof r.data.weightsManifest)[number];
  const expected = group.weights.reduce((n, w) => n + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
  const file = join(dir, group.paths[0]);
  const size = await stat(file).then(
    (s) => (s.isFile() ? s.size : -1),
    () => -1,
  );
  if (size < 0) throw new InferenceError(`${where}: its weights file ${group.paths[0]} is missing`);
  if (size !== expected || expected > MAX_WEIGHTS_BYTES)
    throw new InferenceError(`${where}: ${group.paths[0]} has ${size} bytes; its weight specs describe ${expected}`);
  const bytes = await readFile(file);
  return {
    modelTopology: r.data.modelTopology,
    format: r.data.format,
    weightSpecs: group.weights,
    weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
  };
}
