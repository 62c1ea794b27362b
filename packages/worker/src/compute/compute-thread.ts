/**
 * The compute thread: owns the model and optimizer and runs forward/backward and the update.
 * A step computes for seconds to minutes and blocks its thread under wasm and cpu; running it
 * here keeps the main thread's event loop free for its inbox, heartbeats and gRPC.
 */
import { createHash } from 'node:crypto';
import {
  applyStep,
  checkFiniteVector,
  disposeGradients,
  EmbeddingModel,
  trainingModel,
  flatLayout,
  FlatLayout,
  flattenGradients,
  Optimizer,
  readCheckpoint,
  restoreCheckpoint,
  selectBackend,
  Preprocessing,
  stepGradients,
  tf,
  TrainConfig,
  unflattenGradients,
  writeCheckpoint,
} from '@facenet/core';
import { StateError } from '../errors';
import { serveRequests } from '../threads/serve-requests';
import type { ComputeRequest, HeldState, InitResult } from './protocol';

interface HeldJob {
  jobId: string;
  train: TrainConfig;
  /** Written into every checkpoint: the default crop of commands that embed with it. */
  preprocessing: Preprocessing;
  model: EmbeddingModel;
  optimizer: Optimizer;
  layout: FlatLayout;
  /** Steps applied so far. */
  step: number;
}

let state: HeldJob | undefined;

async function init(req: Extract<ComputeRequest, { type: 'init' }>): Promise<InitResult> {
  await selectBackend({ log: null }); // once per thread; later calls return the chosen backend
  if (state) {
    state.model.dispose();
    state.optimizer.dispose();
    state = undefined;
  }
  const model = trainingModel(req.train.model, req.train.classification ?? false); // configs stored before the option have none
  const optimizer = new Optimizer(req.train.optimizer);
  let step = 0;
  if (req.restoreFrom) {
    const ckpt = await readCheckpoint(req.restoreFrom);
    restoreCheckpoint(ckpt, model, optimizer, req.restoreFrom);
    step = ckpt.manifest.step;
  }
  if (step !== req.step) {
    model.dispose();
    optimizer.dispose();
    throw new StateError(
      req.jobId,
      req.step,
      `cannot start: ${req.restoreFrom ? `checkpoint ${req.restoreFrom} is at step ${step}` : 'no checkpoint to restore and not at step 0'}`,
    );
  }
  state = { jobId: req.jobId, train: req.train, preprocessing: req.preprocessing, model, optimizer, layout: flatLayout(model), step };
  return { step, bnOffset: state.layout.bnOffset };
}

function current(): HeldJob {
  if (!state) throw new StateError('(none)', -1, 'the compute thread holds no job (init first)');
  return state;
}

async function gradients(req: Extract<ComputeRequest, { type: 'gradients' }>): Promise<Float32Array> {
  const s = current();
  const { summed, stats } = await stepGradients(s.model, req.shards, s.train, s.step);
  // A rank whose shards all failed to decode still takes part in the allreduce, with zeros.
  if (!summed) return new Float32Array(s.layout.length);
  try {
    return await flattenGradients(s.layout, summed, stats.length, stats);
  } finally {
    disposeGradients(summed);
  }
}

async function checksum(s: HeldJob): Promise<string> {
  const h = createHash('sha256');
  for (const vars of [s.model.store.trainable, s.model.store.state]) {
    for (const name of [...vars.keys()].sort()) {
      const data = (await vars.get(name)?.data()) as Float32Array;
      h.update(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    }
  }
  return h.digest('hex');
}

async function apply(req: Extract<ComputeRequest, { type: 'apply' }>): Promise<{ step: number; checksum?: string }> {
  const s = current();
  if (req.step !== s.step) throw new StateError(s.jobId, req.step, `update for step ${req.step + 1} but the weights are at step ${s.step}`);
  checkFiniteVector(req.flat, req.step, s.layout.bnOffset); // the main thread checked too; a NaN shard count would skip the update silently
  const { summed, shards } = unflattenGradients(s.layout, req.flat);
  await applyStep(s.model, s.optimizer, summed, shards, s.train, req.step, req.learningRateScale);
  s.step = req.step + 1;
  return { step: s.step, checksum: req.checksum ? await checksum(s) : undefined };
}

/** The held weights' step and checksum (the coordinator compares survivors after a fault), and a
 * checkpoint of them when asked (so ranks that lack them can load them). */
async function heldState(req: Extract<ComputeRequest, { type: 'state' }>): Promise<HeldState | null> {
  if (!state || state.jobId !== req.jobId) return null;
  const s = state;
  let written: string | undefined;
  if (req.checkpointDir) {
    await writeCheckpoint(req.checkpointDir, s.model, s.optimizer, {
      step: s.step,
      seed: s.train.seed,
      training: s.train,
      preprocessing: s.preprocessing,
      overwrite: true,
    });
    written = req.checkpointDir;
  }
  return { jobId: s.jobId, step: s.step, checksum: await checksum(s), checkpoint: written };
}

async function checkpoint(req: Extract<ComputeRequest, { type: 'checkpoint' }>): Promise<string> {
  const s = current();
  await writeCheckpoint(req.dir, s.model, s.optimizer, {
    step: s.step,
    seed: s.train.seed,
    training: s.train,
    preprocessing: s.preprocessing,
    overwrite: true,
  });
  return req.dir;
}

async function handle(req: ComputeRequest): Promise<unknown> {
  switch (req.type) {
    case 'backend': {
      const c = await selectBackend({ log: null });
      return { name: c.name, adapter: c.adapter };
    }
    case 'init':
      return init(req);
    case 'gradients':
      return gradients(req);
    case 'apply':
      return apply(req);
    case 'checkpoint':
      return checkpoint(req);
    case 'state':
      return heldState(req);
    case 'memory':
      return tf.memory().numTensors;
  }
}

// One request at a time, in order: tfjs work is synchronous anyway.
serveRequests(handle, (value) => (value instanceof Float32Array ? [value.buffer as ArrayBuffer] : []));
