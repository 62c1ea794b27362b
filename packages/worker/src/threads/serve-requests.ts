import { parentPort } from 'node:worker_threads';
import { toEnvelope } from '@facenet/core';
import type { ThreadReply } from './thread-client';

/**
 * The thread side of ThreadClient: answers requests one at a time, in order, transferring reply
 * buffers instead of copying them. Errors travel as envelopes (class, fields, retryability), so
 * the main thread rebuilds the same class.
 */
export function serveRequests<R extends { id: number }>(
  handle: (req: R) => Promise<unknown>,
  transferOf: (value: unknown) => ArrayBuffer[],
): void {
  const port = parentPort;
  if (!port) throw new Error('this file must run as a worker thread');
  let queue = Promise.resolve();
  port.on('message', (req: R) => {
    queue = queue.then(async () => {
      let reply: ThreadReply;
      try {
        reply = { id: req.id, ok: true, value: await handle(req) };
      } catch (err) {
        reply = { id: req.id, ok: false, error: toEnvelope(err) };
      }
      port.postMessage(reply, reply.ok ? transferOf(reply.value) : []);
    });
  });
}
