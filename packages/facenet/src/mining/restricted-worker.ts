/** Worker thread of mineTripletsRestrictedParallel: scans its share of the identities. */
import { parentPort, workerData } from 'node:worker_threads';
import type { compile } from './selection';
import { scanIdentities, ScanWork } from './restricted-scan';

interface Input {
  emb: Float32Array;
  norms: Float32Array;
  dim: number;
  c: ReturnType<typeof compile>;
  sampled: number[];
  work: ScanWork;
  from: number;
  to: number;
}

const d = workerData as Input;
const result = scanIdentities(d.emb, d.norms, d.dim, d.c, new Set(d.sampled), d.work, d.from, d.to);
parentPort?.postMessage(result, result.triplets.buffers()); // the columns move, not copied
