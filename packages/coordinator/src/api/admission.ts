import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DatasetError, identitySizes, imageCount, MAX_CLASS_WEIGHTS, TrainConfig } from '@facenet/core';
import { DatasetIndexRef, datasetKind, JobSpec, SpecIssue, trainingSource } from '@facenet/protocol';
import type { PackOptions } from '@facenet/protocol';
import { compressIndex } from '@facenet/service-kit';

export type Issue = SpecIssue;

/** What admitting a spec's data found: the issues, the classes a classification head needs, the index built. */
export interface DataVerdict {
  issues: Issue[];
  /** Training identities (one class each). */
  classes?: number;
  /** The identity index, packed and compressed (compressIndex), for kinds that have one: stored by the coordinator, read by every process. */
  index?: { ref: DatasetIndexRef; stored: Uint8Array };
}

/**
 * That the dataset is there and leaves people to train on, in shards that can form triplets.
 * Runs in the admission thread: scanning a folder of 100k files, reading a manifest of millions or
 * indexing a 2M-image synthetic set takes seconds; so do hashing and compressing the index.
 */
export async function checkData(spec: JobSpec, train: TrainConfig | undefined, o: PackOptions = {}): Promise<DataVerdict> {
  const issues: Issue[] = [];
  const kind = datasetKind(spec.dataset);
  try {
    const packed = await kind.pack?.(spec.dataset, o);
    const source = kind.source(spec.dataset, packed);
    const index = packed && {
      ref: {
        id: createHash('sha256').update(packed).digest('hex'),
        identities: source.index.names.length,
        images: imageCount(source.index),
        bytes: packed.length,
      },
      stored: compressIndex(packed),
    };
    const eligible = countAtLeastTwo(identitySizes(source.index));
    if (spec.holdout > 0 && eligible - spec.holdout < 2) {
      issues.push({ path: 'holdout', message: `leaves ${eligible - spec.holdout} identities with 2+ images to train on; need at least 2` });
      return { issues };
    }
    if (!train) return { issues, index };
    const trainIndex = trainingSource(source, spec.holdout, train.seed).train.index;
    const classes = trainIndex.names.length;
    const fill = countAtLeastTwo(identitySizes(trainIndex));
    // A batch holds min(P, identities with 2+ images); every virtual shard needs two of them.
    if (fill < 2 * train.virtualShards && !(train.classification && train.classification.mode === 'alone'))
      issues.push({
        path: 'train.virtualShards',
        message: `${train.virtualShards} virtual shards need ${2 * train.virtualShards} training identities with 2+ images (two per shard to form a triplet); the dataset leaves ${fill} after holdout ${spec.holdout}`,
      });
    if (train.classification) {
      const weights = classes * train.model.embeddingDim;
      if (weights > MAX_CLASS_WEIGHTS)
        issues.push({
          path: 'train.classification',
          message: `${classes} identities x embeddingDim ${train.model.embeddingDim} = ${weights} class weights exceeds ${MAX_CLASS_WEIGHTS}`,
        });
    }
    return { issues, classes, index };
  } catch (err) {
    if (!(err instanceof DatasetError)) throw err;
    issues.push({ path: kind.errorPath, message: err.message });
    return { issues };
  }
}

function countAtLeastTwo(sizes: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < sizes.length; i++) if ((sizes[i] as number) >= 2) n++;
  return n;
}

/** Indexes at least this large drop the admission thread afterwards (its heap goes with it). */
const DROP_THREAD_AFTER_IMAGES = 100_000;

type Reply = { id: number; ok: true; value: DataVerdict } | { id: number; ok: false; error: string } | { id: number; progress: number };

/**
 * The coordinator's handle on its admission thread (admission-thread.ts): one check at a time, in
 * order, so the API's event loop never scans or indexes. A check that outlives `timeoutMs` is
 * refused and the thread replaced (its work is abandoned, not waited for).
 */
export class AdmissionClient {
  private thread: Worker | undefined;
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  /** Ends each check in flight (close). */
  private readonly aborts = new Set<() => void>();

  constructor(private readonly timeoutMs = 60_000) {}

  private start(): Worker {
    const t = new Worker(join(__dirname, 'admission-thread.js'));
    t.unref(); // an idle admission thread keeps no process alive
    return t;
  }

  /** `onProgress`: the images indexed so far, as the thread reports them (every 65,536). */
  check(spec: JobSpec, train: TrainConfig | undefined, onProgress?: (images: number) => void): Promise<DataVerdict> {
    const run = this.queue.then(() => this.once(spec, train, onProgress));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private once(spec: JobSpec, train: TrainConfig | undefined, onProgress?: (images: number) => void): Promise<DataVerdict> {
    const thread = (this.thread ??= this.start());
    const id = this.nextId++;
    return new Promise<DataVerdict>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.aborts.delete(abort);
        thread.off('message', onMessage);
        thread.off('error', onError);
      };
      const abort = () => {
        done();
        reject(new Error('the coordinator closed during admission'));
      };
      this.aborts.add(abort);
      const onMessage = (r: Reply) => {
        if (r.id !== id) return;
        if ('progress' in r) return onProgress?.(r.progress);
        done();
        if (r.ok && r.value.index && r.value.index.ref.images >= DROP_THREAD_AFTER_IMAGES) {
          // Indexing millions of images leaves hundreds of MB in the thread's heap: drop the thread.
          // A small dataset's thread is kept: starting one costs half a second of module loading,
          // and sweeps admit the same dataset once per trial.
          this.thread = undefined;
          void thread.terminate();
        }
        if (r.ok) resolve(r.value);
        else reject(new Error(r.error));
      };
      const onError = (err: Error) => {
        done();
        this.thread = undefined;
        reject(new Error(`admission thread crashed: ${err.message}`));
      };
      const timer = setTimeout(() => {
        done();
        this.thread = undefined;
        void thread.terminate();
        resolve({
          issues: [
            {
              path: datasetKind(spec.dataset).errorPath,
              message: `admitting this dataset took longer than ${this.timeoutMs / 1000} s; split it, or raise FACENET_ADMISSION_TIMEOUT_MS (the coordinator's admissionTimeoutMs)`,
            },
          ],
        });
      }, this.timeoutMs);
      thread.on('message', onMessage);
      thread.on('error', onError);
      // The thread's own deadline ends the scan a little before ours, so it says how far it got.
      thread.postMessage({ id, spec, train, deadlineMs: Math.max(1, this.timeoutMs - 1000) });
    });
  }

  async close(): Promise<void> {
    for (const abort of [...this.aborts]) abort();
    await this.thread?.terminate();
    this.thread = undefined;
  }
}
