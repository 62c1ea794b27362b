/**
 * The data thread: decodes and augments a step's images. Drawing a synthetic face of 512 px takes
 * ~200 ms and a batch holds thousands; done on the main thread it would stop heartbeats, lock
 * renewal and signal handling for minutes. Here it blocks only this thread, which an interrupt
 * (a cancelled job) terminates.
 */
import { LoadedImages, processCache } from '@facenet/core';
import { serveRequests } from '../threads/serve-requests';
import type { DataRequest, LoadReply } from './protocol';
import { InProcessLoader } from './step-loader';

const loader = new InProcessLoader();

async function handle(req: DataRequest): Promise<unknown> {
  switch (req.type) {
    case 'load': {
      const images = await loader.load(req.dataset, req.shards, req.train, req.step, req.packed);
      const cache = processCache();
      const { hits, misses, bytesFetched } = cache.stats;
      return { images, cache: { hits, misses, bytesFetched, fetchSeconds: cache.drainFetchSeconds() } } satisfies LoadReply;
    }
    case 'release':
      return loader.release();
  }
}

serveRequests(handle, (value) =>
  value && typeof value === 'object' && 'images' in value
    ? (value as LoadReply).images.flatMap((l: LoadedImages) => [l.data.buffer as ArrayBuffer, l.labels.buffer as ArrayBuffer])
    : [],
);
