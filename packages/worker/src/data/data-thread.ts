/**
 * The data thread: decodes and augments a step's images. Drawing a synthetic face of 512 px takes
 * ~200 ms and a batch holds thousands; done on the main thread it would stop heartbeats, lock
 * renewal and signal handling for minutes. Here it blocks only this thread, which an interrupt
 * (a cancelled job) terminates.
 */
import type { LoadedImages } from '@facenet/core';
import { serveRequests } from '../threads/serve-requests';
import type { DataRequest } from './protocol';
import { InProcessLoader } from './step-loader';

const loader = new InProcessLoader();

async function handle(req: DataRequest): Promise<unknown> {
  switch (req.type) {
    case 'load':
      return loader.load(req.dataset, req.shards, req.train, req.step, req.packed);
    case 'release':
      return loader.release();
  }
}

serveRequests(handle, (value) =>
  Array.isArray(value) ? (value as LoadedImages[]).flatMap((l) => [l.data.buffer as ArrayBuffer, l.labels.buffer as ArrayBuffer]) : [],
);
