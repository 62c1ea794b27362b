import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { DatasetError, MAX_CLASS_WEIGHTS, scanPeopleFolderAsync, TrainConfig } from '@facenet/core';
import { JobSpec, sourceFromSpec, trainingSource } from '@facenet/protocol';

export type Issue = { path: string; message: string };

/** What admitting a spec's data found: the issues, and the classes a classification head needs. */
export interface DataVerdict {
  issues: Issue[];
  /** Training identities (one class each). */
  classes?: number;
}

/**
 * That the dataset is there and leaves people to train on, in shards that can form triplets.
 * Runs in the admission thread: scanning a folder of 100k files or indexing a 2M-image synthetic
 * set takes seconds.
 */
export async function checkData(spec: JobSpec, train: TrainConfig | undefined): Promise<DataVerdict> {
  const issues: Issue[] = [];
  try {
    const index = spec.dataset.kind === 'folder' ? await scanPeopleFolderAsync(spec.dataset.path) : undefined;
    const source = sourceFromSpec(spec.dataset, index);
    const eligible = source.index.images.filter((i) => i.length >= 2).length;
    if (spec.holdout > 0 && eligible - spec.holdout < 2) {
      issues.push({ path: 'holdout', message: `leaves ${eligible - spec.holdout} identities with 2+ images to train on; need at least 2` });
      return { issues };
    }
    if (!train) return { issues };
    const trainIndex = trainingSource(source, spec.holdout, train.seed).train.index;
    const classes = trainIndex.images.length;
    const fill = trainIndex.images.filter((i) => i.length >= 2).length;
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
    return { issues, classes };
  } catch (err) {
    if (!(err instanceof DatasetError)) throw err;
    issues.push({ path: spec.dataset.kind === 'folder' ? 'dataset.path' : 'dataset', message: err.message });
    return { issues };
  }
}

type Reply = { id: number; ok: true; value: DataVerdict } | { id: number; ok: false; error: string };

/**
 * The coordinator's handle on its admission thread (admission-thread.ts): one check at a time, in
 * order, so the API's event loop never scans or indexes. A check that outlives `timeoutMs` is
 * refused and the thread replaced (its work is abandoned, not waited for).
 */
export class AdmissionClient {
  private thread: Worker | undefined;
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly timeoutMs = 60_000) {}

  private start(): Worker {
    const t = new Worker(join(__dirname, 'admission-thread.js'));
    t.unref(); // an idle admission thread keeps no process alive
    return t;
  }

  check(spec: JobSpec, train: TrainConfig | undefined): Promise<DataVerdict> {
    const run = this.queue.then(() => this.once(spec, train));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private once(spec: JobSpec, train: TrainConfig | undefined): Promise<DataVerdict> {
    const thread = (this.thread ??= this.start());
    const id = this.nextId++;
    return new Promise<DataVerdict>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        thread.off('message', onMessage);
        thread.off('error', onError);
      };
      const onMessage = (r: Reply) => {
        if (r.id !== id) return;
        done();
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
        const where = spec.dataset.kind === 'folder' ? 'dataset.path' : 'dataset';
        resolve({
          issues: [
            { path: where, message: `admitting this dataset took longer than ${this.timeoutMs / 1000} s; split it or use a smaller set` },
          ],
        });
      }, this.timeoutMs);
      thread.on('message', onMessage);
      thread.on('error', onError);
      thread.postMessage({ id, spec, train });
    });
  }

  async close(): Promise<void> {
    await this.thread?.terminate();
    this.thread = undefined;
  }
}
