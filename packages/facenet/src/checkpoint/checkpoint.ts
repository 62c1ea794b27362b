import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { lstat, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { tf } from '../backend/tf';
import { CheckpointError, StorageError } from '../errors';
import { EmbeddingModel, ModelConfig } from '../model/embedding-model';
import { Optimizer, OptimizerConfig } from '../optim/optimizer';

export const CHECKPOINT_FORMAT = 'facenet-checkpoint/1';
const MANIFEST = 'manifest.json';
const WEIGHTS = 'weights.bin';

export type TensorGroup = 'param' | 'state' | 'slot';

export interface TensorEntry {
  name: string;
  group: TensorGroup;
  shape: number[];
  /** Offset in float32 elements into weights.bin. */
  offset: number;
}

export interface CheckpointManifest {
  format: typeof CHECKPOINT_FORMAT;
  createdAt: string;
  model: ModelConfig;
  /** Steps completed: a resumed run continues with step `step`. */
  step: number;
  optimizer: { config: OptimizerConfig; iterations: number };
  /** All randomness derives from (seed, step), so this is the whole RNG state. */
  rng: { seed: number };
  /** The training configuration, to resume with the same settings. */
  training?: unknown;
  /** How images were prepared for this model (its input size is model.imageSize): the default of
   * every command that embeds with it. Absent in checkpoints written before it was recorded. */
  preprocessing?: Preprocessing;
  /** Latest evaluation, including the verification threshold that `verify` uses. */
  evaluation?: { threshold: number; accuracy: number; val: number; far: number; step: number };
  tensors: TensorEntry[];
  weights: { file: string; bytes: number; sha256: string };
}

export interface CheckpointContents {
  manifest: CheckpointManifest;
  tensors: Map<string, Float32Array>;
}

function groups(model: EmbeddingModel, optimizer?: Optimizer): [TensorGroup, Map<string, tf.Variable>][] {
  const g: [TensorGroup, Map<string, tf.Variable>][] = [
    ['param', model.store.trainable],
    ['state', model.store.state],
  ];
  if (optimizer) g.push(['slot', optimizer.slots]);
  return g;
}

export interface Preprocessing {
  /** Centre crop of each image before resizing (1: the whole image). */
  cropFraction: number;
}

export interface WriteCheckpointOptions {
  step: number;
  preprocessing?: Preprocessing;
  seed: number;
  training?: unknown;
  evaluation?: CheckpointManifest['evaluation'];
  /** Replace an existing checkpoint at `dir`. @default false */
  overwrite?: boolean;
}

/**
 * Writes model weights, batch-norm state and optimizer slots to `dir` atomically: everything
 * goes to a temporary sibling folder that is renamed into place, so a reader sees either no
 * checkpoint or a complete one, never half of one.
 */
export async function writeCheckpoint(
  dir: string,
  model: EmbeddingModel,
  optimizer: Optimizer | undefined,
  o: WriteCheckpointOptions,
): Promise<CheckpointManifest> {
  const target = resolve(dir);
  if (existsSync(target) && !o.overwrite) throw new CheckpointError(target, 'already exists');
  const entries: TensorEntry[] = [];
  const chunks: Float32Array[] = [];
  let offset = 0;
  for (const [group, vars] of groups(model, optimizer)) {
    for (const name of [...vars.keys()].sort()) {
      const v = vars.get(name) as tf.Variable;
      const data = (await v.data()) as Float32Array;
      entries.push({ name, group, shape: v.shape, offset });
      chunks.push(data);
      offset += data.length;
    }
  }
  const weights = Buffer.alloc(offset * 4);
  let pos = 0;
  for (const c of chunks) {
    Buffer.from(c.buffer, c.byteOffset, c.byteLength).copy(weights, pos);
    pos += c.byteLength;
  }
  const manifest: CheckpointManifest = {
    format: CHECKPOINT_FORMAT,
    createdAt: new Date().toISOString(),
    model: model.config,
    step: o.step,
    optimizer: optimizer
      ? { config: optimizer.config, iterations: optimizer.iterations }
      : { config: new Optimizer().config, iterations: 0 },
    rng: { seed: o.seed },
    training: o.training,
    preprocessing: o.preprocessing,
    evaluation: o.evaluation,
    tensors: entries,
    weights: { file: WEIGHTS, bytes: weights.length, sha256: createHash('sha256').update(weights).digest('hex') },
  };
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(tmp, { recursive: true });
    await writeDurably(join(tmp, WEIGHTS), weights);
    await writeDurably(join(tmp, MANIFEST), Buffer.from(JSON.stringify(manifest, null, 2)));
    await verifyWeights(tmp, manifest.weights);
    if (o.overwrite && existsSync(target)) await rm(target, { recursive: true });
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    if (err instanceof StorageError) throw new StorageError(target, err.code, err.reason);
    const e = err as NodeJS.ErrnoException;
    throw new StorageError(target, e.code ?? 'EIO', e.message);
  }
  return manifest;
}

/** Writes and fsyncs a file: a checkpoint counts only once its bytes are on the disk, not in the page cache. */
async function writeDurably(path: string, data: Buffer): Promise<void> {
  const f = await open(path, 'w');
  try {
    await f.writeFile(data);
    await f.sync();
  } finally {
    await f.close();
  }
}

/** Reads the weights back and compares size and sha256 with the manifest (a short write or a bad disk shows here). */
async function verifyWeights(dir: string, expected: CheckpointManifest['weights']): Promise<void> {
  const back = await readFile(join(dir, WEIGHTS));
  const sha = createHash('sha256').update(back).digest('hex');
  if (back.length !== expected.bytes || sha !== expected.sha256) {
    throw new StorageError(
      dir,
      'EVERIFY',
      `weights read back as ${back.length} bytes (sha256 ${sha.slice(0, 12)}), written ${expected.bytes} (${expected.sha256.slice(0, 12)})`,
    );
  }
}

/** A checkpoint's files are its own: a symbolic link (to another job's weights, to /etc/...) is refused. */
async function refuseLink(dir: string, file: string): Promise<void> {
  const st = await lstat(join(dir, file)).catch(() => undefined);
  if (st?.isSymbolicLink()) throw new CheckpointError(dir, `${file} is a symbolic link; a checkpoint's files must be its own`);
}

/** Reads and verifies a checkpoint (format, sha256, sizes). Errors say what is wrong. */
export async function readCheckpoint(dir: string): Promise<CheckpointContents> {
  const target = resolve(dir);
  let manifest: CheckpointManifest;
  await refuseLink(target, MANIFEST);
  try {
    manifest = JSON.parse(await readFile(join(target, MANIFEST), 'utf8')) as CheckpointManifest;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CheckpointError(
      target,
      code === 'ENOENT' ? `no ${MANIFEST} (not a checkpoint folder)` : `unreadable manifest: ${(err as Error).message}`,
    );
  }
  if (!manifest || typeof manifest !== 'object' || Array.isArray(manifest))
    throw new CheckpointError(target, `${MANIFEST} is not a JSON object`);
  if (manifest.format !== CHECKPOINT_FORMAT)
    throw new CheckpointError(target, `format '${String(manifest.format)}', expected '${CHECKPOINT_FORMAT}'`);
  checkManifestShape(target, manifest);
  let weights: Buffer;
  await refuseLink(target, manifest.weights.file);
  try {
    weights = await readFile(join(target, manifest.weights.file));
  } catch (err) {
    throw new CheckpointError(
      target,
      `cannot read ${manifest.weights.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (weights.length !== manifest.weights.bytes)
    throw new CheckpointError(target, `${manifest.weights.file} has ${weights.length} bytes, manifest says ${manifest.weights.bytes}`);
  const sha = createHash('sha256').update(weights).digest('hex');
  if (sha !== manifest.weights.sha256)
    throw new CheckpointError(
      target,
      `${manifest.weights.file} is corrupt (sha256 ${sha.slice(0, 12)}..., manifest ${manifest.weights.sha256.slice(0, 12)}...)`,
    );
  const floats = new Float32Array(weights.buffer, weights.byteOffset, weights.length / 4);
  const tensors = new Map<string, Float32Array>();
  for (const e of manifest.tensors) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (e.offset + n > floats.length) throw new CheckpointError(target, `tensor ${e.name} runs past the end of ${manifest.weights.file}`);
    const values = floats.slice(e.offset, e.offset + n);
    // A sha256 proves the file is the one the manifest names, not that its numbers are usable.
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0)
      throw new CheckpointError(
        target,
        `${e.group} '${e.name}' holds a non-finite value (${values[bad]} at element ${bad}); refusing to load it`,
      );
    tensors.set(`${e.group}:${e.name}`, values);
  }
  return { manifest, tensors };
}

/**
 * The manifest is untrusted input: its weights file must be a plain name inside the checkpoint
 * folder, and every tensor entry a name, a group, a shape of non-negative integers and an
 * offset that is a non-negative integer.
 */
function checkManifestShape(target: string, m: CheckpointManifest): void {
  const file = m.weights?.file;
  if (typeof file !== 'string' || file !== basename(file) || file === '..' || file === '.' || file === '') {
    throw new CheckpointError(target, `weights.file must name a file inside the checkpoint folder, got ${JSON.stringify(file)}`);
  }
  if (!Number.isSafeInteger(m.weights.bytes) || m.weights.bytes < 0 || typeof m.weights.sha256 !== 'string')
    throw new CheckpointError(target, 'weights.bytes and weights.sha256 are missing or malformed');
  if (!Array.isArray(m.tensors)) throw new CheckpointError(target, 'tensors is missing');
  if (!m.model || typeof m.model !== 'object') throw new CheckpointError(target, 'model is missing');
  if (!m.optimizer || typeof m.optimizer !== 'object' || !Number.isSafeInteger(m.optimizer.iterations))
    throw new CheckpointError(target, 'optimizer is missing or malformed');
  if (!Number.isSafeInteger(m.step) || m.step < 0)
    throw new CheckpointError(target, `step must be an integer >= 0, got ${JSON.stringify(m.step)}`);
  for (const e of m.tensors) {
    const ok =
      typeof e?.name === 'string' &&
      ['param', 'state', 'slot'].includes(e.group) &&
      Array.isArray(e.shape) &&
      e.shape.every((d) => Number.isSafeInteger(d) && d >= 0) &&
      Number.isSafeInteger(e.offset) &&
      e.offset >= 0;
    if (!ok) throw new CheckpointError(target, `malformed tensor entry ${JSON.stringify(e).slice(0, 120)}`);
  }
}

/**
 * Loads checkpoint values into an existing model (and optimizer). Every variable of the model
 * must be present with the same shape: a mismatch names the variable and changes nothing.
 */
export function restoreCheckpoint(ckpt: CheckpointContents, model: EmbeddingModel, optimizer?: Optimizer, dir = '(checkpoint)'): void {
  const byKey = new Map(ckpt.manifest.tensors.map((e) => [`${e.group}:${e.name}`, e]));
  const plan: [tf.Variable, Float32Array][] = [];
  for (const [group, vars] of groups(model, optimizer)) {
    if (group === 'slot') continue;
    for (const [name, v] of vars) {
      const e = byKey.get(`${group}:${name}`);
      if (!e)
        throw new CheckpointError(
          dir,
          `has no ${group} '${name}' (architecture ${ckpt.manifest.model.architecture} vs model ${model.config.architecture}?)`,
        );
      if (e.shape.join(',') !== v.shape.join(','))
        throw new CheckpointError(dir, `${group} '${name}' has shape [${e.shape}], model expects [${v.shape}]`);
      plan.push([v, ckpt.tensors.get(`${group}:${name}`) as Float32Array]);
    }
  }
  for (const [v, data] of plan) tf.tidy(() => v.assign(tf.tensor(data, v.shape)));
  if (optimizer) {
    optimizer.dispose();
    for (const e of ckpt.manifest.tensors) {
      if (e.group !== 'slot') continue;
      optimizer.slots.set(e.name, tf.variable(tf.tensor(ckpt.tensors.get(`slot:${e.name}`) as Float32Array, e.shape), false));
    }
    optimizer.iterations = ckpt.manifest.optimizer.iterations;
  }
}

/** A ready-to-use model from a checkpoint folder. */
export async function loadModel(dir: string): Promise<{ model: EmbeddingModel; manifest: CheckpointManifest }> {
  const ckpt = await readCheckpoint(dir);
  const model = new EmbeddingModel(ckpt.manifest.model);
  try {
    restoreCheckpoint(ckpt, model, undefined, resolve(dir));
  } catch (err) {
    model.dispose();
    throw err;
  }
  return { model, manifest: ckpt.manifest };
}

/**
 * A checkpoint folder, or a run folder holding step-NNNNNN checkpoints (the newest is taken).
 * Half-written temporaries (.step-*.tmp-*) are never chosen.
 */
export function resolveCheckpointDir(path: string): string {
  const target = resolve(path);
  if (existsSync(join(target, MANIFEST))) return target;
  let names: string[] = [];
  try {
    names = readdirSync(target)
      .filter((n) => /^step-\d+$/.test(n) && existsSync(join(target, n, MANIFEST)))
      .sort();
  } catch (err) {
    throw new CheckpointError(target, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : (err as Error).message);
  }
  const newest = names[names.length - 1];
  if (!newest) throw new CheckpointError(target, `neither a checkpoint (no ${MANIFEST}) nor a run folder with step-* checkpoints`);
  return join(target, newest);
}
