/**
 * The mining thread: loads each checkpoint, embeds the sample and mines it. Embedding a few
 * thousand faces and the exact scan take seconds to minutes of blocking compute under wasm and
 * cpu; here they leave the miner's main thread free for heartbeats, BullMQ lock renewal and
 * /metrics. The thread lives as long as the miner, so its sources' decoded-image caches do too.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { selectBackend, toEnvelope } from '@facenet/core';
import { CheckpointMiner } from './mine-checkpoint';
import type { CompiledMinerOptions } from './miner-options';
import type { MiningReply, MiningRequest } from './mining-client';

const miner = new CheckpointMiner(workerData as CompiledMinerOptions);
// Chosen once, as the thread starts, so the first checkpoint does not also wait for the backend.
const backend = selectBackend({ log: null });

parentPort?.on('message', (req: MiningRequest) => {
  void (async (): Promise<MiningReply> => {
    try {
      await backend;
      return { id: req.id, ok: true, value: await miner.mine(req.job, req.checkpoint, req.step, req.packed) };
    } catch (err) {
      return { id: req.id, ok: false, error: toEnvelope(err) };
    }
  })().then((reply) => parentPort?.postMessage(reply));
});
