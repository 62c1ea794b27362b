import { FastifyInstance } from 'fastify';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { pack } from 'tar-stream';
import { EXPORT_FORMATS, ExportFormat, ExportResult, SpecError } from '@facenet/core';
import { bestEvaluation, EvaluationRecord, JobRecord } from '@facenet/protocol';
import { CoordinatorError, JobStateError } from '../errors';
import { queryInteger } from './query-integer';

interface ExportDeps {
  job(id: string): Promise<JobRecord>;
  evaluations(id: string): Promise<EvaluationRecord[]>;
}

/** Exports run one at a time: each holds a model in memory, and a queue of them must not starve the coordinator's two cores. */
let queue: Promise<unknown> = Promise.resolve();

function exportInThread(checkpointDir: string, format: ExportFormat, outDir: string): Promise<ExportResult> {
  const run = () =>
    new Promise<ExportResult>((resolve, reject) => {
      const t = new Worker(join(__dirname, 'export-thread.js'), { workerData: { checkpointDir, format, outDir } });
      t.once('message', (m: { ok: true; value: ExportResult } | { ok: false; error: string }) =>
        m.ok ? resolve(m.value) : reject(new CoordinatorError(`export of ${checkpointDir} failed: ${m.error}`)),
      );
      t.once('error', reject);
      t.once('exit', (code) => reject(new Error(`export thread exited ${code}`)));
    });
  const result = queue.then(run, run);
  queue = result.catch(() => undefined);
  return result;
}

/**
 * GET /v1/jobs/:id/export?format=onnx|tfjs[&step=N]: a job's checkpoint as a model other runtimes
 * load (facenet export's formats). The checkpoint is `step`, else the best by the evaluator's VAL,
 * else the newest. ONNX answers model.onnx; tfjs a tar of model.json, its weights and facenet.json.
 */
export function registerExportRoute(app: FastifyInstance, d: ExportDeps): void {
  app.get<{ Params: { id: string }; Querystring: { format?: string; step?: string } }>('/v1/jobs/:id/export', async (req, reply) => {
    const format = req.query.format ?? 'onnx';
    if (!(EXPORT_FORMATS as readonly string[]).includes(format))
      throw new SpecError([{ path: 'format', message: `must be one of ${EXPORT_FORMATS.join(', ')}, got '${format}'` }]);
    const parsed = req.query.step === undefined ? undefined : queryInteger.safeParse(req.query.step);
    if (parsed && !parsed.success)
      throw new SpecError([{ path: 'step', message: `must be a checkpoint's step (decimal digits), got '${req.query.step}'` }]);
    const step = parsed?.data;
    const job = await d.job(req.params.id);
    const best = bestEvaluation(await d.evaluations(job.id));
    const wanted = step ?? best?.step;
    const ckpt = wanted === undefined ? job.checkpoints.at(-1) : job.checkpoints.find((c) => c.step === wanted);
    if (!ckpt) {
      const have = job.checkpoints.map((c) => c.step).join(', ') || 'none';
      throw new JobStateError(job.id, `has no checkpoint${wanted === undefined ? '' : ` at step ${wanted}`} (have: ${have})`);
    }
    const tmp = await mkdtemp(join(tmpdir(), 'facenet-export-'));
    const cleanup = () => void rm(tmp, { recursive: true, force: true });
    try {
      const out = join(tmp, 'model');
      const r = await exportInThread(ckpt.dir, format as ExportFormat, out);
      const name = `${job.id}-step-${ckpt.step}`;
      reply.header('x-facenet-checkpoint-step', String(ckpt.step));
      if (format === 'onnx') {
        const stream = createReadStream(join(out, 'model.onnx'));
        stream.once('close', cleanup);
        return reply.type('application/octet-stream').header('content-disposition', `attachment; filename="${name}.onnx"`).send(stream);
      }
      // The tar streams as it is written: the reply consumes it while the files go in.
      const tar = pack();
      void (async () => {
        try {
          for (const f of r.files) {
            const entry = tar.entry({ name: `${name}/${f.name}`, size: f.bytes });
            createReadStream(join(out, f.name)).pipe(entry);
            await new Promise<void>((resolve, reject) => entry.once('finish', resolve).once('error', reject));
          }
          tar.finalize();
        } catch (err) {
          tar.destroy(err as Error);
        } finally {
          cleanup();
        }
      })();
      return reply.type('application/x-tar').header('content-disposition', `attachment; filename="${name}.tar"`).send(tar);
    } catch (err) {
      cleanup();
      throw err;
    }
  });
}
