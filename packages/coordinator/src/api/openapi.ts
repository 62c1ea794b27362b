import { z } from 'zod';
import { JOB_STATES, jobSpecSchema, sweepSpecSchema } from '@facenet/protocol';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const jobResponse = { 200: { description: 'The job', ...json(ref('Job')) }, 404: { description: 'No such job', ...json(ref('Error')) } };

/** The OpenAPI 3.1 document of the REST API; the job spec schema comes from the same zod schema that validates requests. */
export function openApiDocument() {
  return {
    openapi: '3.1.0',
    info: { title: 'facenet coordinator', version: '1.0.0', description: 'Launch, watch and steer distributed FaceNet training jobs.' },
    // With tokens configured every /v1 route needs one (read, admin or a team's); /healthz, /metrics and this document do not.
    security: [{ bearer: [] }],
    paths: {
      '/v1/jobs': {
        post: {
          summary: 'Create a job',
          requestBody: { required: true, ...json(ref('JobSpec')) },
          responses: {
            201: { description: 'Created', ...json(ref('Job')) },
            202: {
              description:
                'Accepted: the dataset is still being indexed (longer than FACENET_ADMISSION_ANSWER_MS); the job is `admitting` and becomes `pending`, or `failed` with the reasons',
              ...json(ref('Job')),
            },
            400: { description: 'Invalid spec: one issue per bad field', ...json(ref('ValidationError')) },
          },
        },
        get: {
          summary: 'A page of jobs, newest first; the next page is named by the X-Next-Cursor and Link headers (absent on the last)',
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
            { name: 'state', in: 'query', schema: { enum: [...JOB_STATES] } },
            { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'X-Next-Cursor of the previous page' },
          ],
          responses: {
            200: { description: 'Jobs', ...json({ type: 'array', items: ref('Job') }) },
            400: { description: 'A bad query parameter', ...json(ref('ValidationError')) },
          },
        },
      },
      '/v1/jobs/{id}': {
        get: { summary: 'A job: state, step, loss, images/s, world, last checkpoint', parameters: [idParam], responses: jobResponse },
      },
      '/v1/jobs/{id}/pause': {
        post: {
          summary: 'Pause at the next step boundary',
          parameters: [idParam],
          responses: { ...jobResponse, 409: { description: 'Not running', ...json(ref('Error')) } },
        },
      },
      '/v1/jobs/{id}/resume': {
        post: {
          summary: 'Resume a paused job, optionally from a chosen checkpoint step',
          parameters: [idParam],
          requestBody: {
            required: false,
            ...json({ type: 'object', properties: { fromStep: { type: 'integer' } }, additionalProperties: false }),
          },
          responses: { ...jobResponse, 409: { description: 'Cannot resume in this state', ...json(ref('Error')) } },
        },
      },
      '/v1/jobs/{id}/cancel': {
        post: { summary: 'Cancel (a running job: its step in flight is interrupted)', parameters: [idParam], responses: jobResponse },
      },
      '/v1/jobs/{id}/history': {
        get: {
          summary:
            'Per-step records (loss, active fraction, images/s, per-rank timings), the newest `limit` oldest first; X-Next-Cursor pages back (1,000 kept)',
          parameters: [
            idParam,
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } },
            {
              name: 'cursor',
              in: 'query',
              schema: { type: 'integer', minimum: 0, default: 0 },
              description: 'X-Next-Cursor of the newer page',
            },
          ],
          responses: { 200: { description: 'Steps', ...json({ type: 'array', items: { type: 'object' } }) } },
        },
      },
      '/v1/jobs/{id}/checkpoints': {
        get: {
          summary: 'Checkpoints of a job',
          parameters: [idParam],
          responses: { 200: { description: 'Checkpoints', ...json({ type: 'array', items: ref('Checkpoint') }) } },
        },
      },
      '/v1/jobs/{id}/export': {
        get: {
          summary:
            "A job's checkpoint as a model other runtimes load (what `facenet export` writes): `step`, else the best by the evaluator's VAL, else the newest. onnx: model.onnx; tfjs: a tar of model.json, its weights and facenet.json",
          parameters: [
            idParam,
            { name: 'format', in: 'query', schema: { type: 'string', enum: ['onnx', 'tfjs'], default: 'onnx' } },
            { name: 'step', in: 'query', schema: { type: 'integer', minimum: 0 } },
          ],
          responses: {
            200: {
              description: 'The model (header x-facenet-checkpoint-step names the checkpoint)',
              content: {
                'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
                'application/x-tar': { schema: { type: 'string', format: 'binary' } },
              },
            },
            400: { description: 'Bad format or step' },
            409: { description: 'No such checkpoint' },
          },
        },
      },
      '/v1/jobs/{id}/evaluations/{step}/report': {
        get: {
          summary:
            "The evaluator's HTML report of one checkpoint (ROC, distance histograms, worst false accepts and rejects; self-contained); 404 without one (FACENET_REPORT_ROOT unset on the evaluator and coordinator)",
          parameters: [idParam, { name: 'step', in: 'path', required: true, schema: { type: 'integer' } }],
          responses: {
            200: { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } },
            404: { description: 'No report' },
          },
        },
      },
      '/v1/jobs/{id}/evaluations/{step}/report-link': {
        get: {
          summary:
            'A signed link (/report?link=...) to that report, valid for a minute and needing no token, so a browser tab can open it; the report is served sandboxed (an opaque origin)',
          parameters: [idParam, { name: 'step', in: 'path', required: true, schema: { type: 'integer' } }],
          responses: {
            200: {
              description: 'Link',
              ...json({ type: 'object', properties: { url: { type: 'string' }, expiresInMs: { type: 'integer' } } }),
            },
          },
        },
      },
      '/v1/jobs/{id}/evaluations': {
        get: {
          summary: "The evaluator's scores of each evaluated checkpoint (accuracy, VAL at the target FAR, AUC, threshold), oldest first",
          parameters: [idParam],
          responses: { 200: { description: 'Evaluations', ...json({ type: 'array', items: { type: 'object' } }) } },
        },
      },
      '/v1/jobs/{id}/fork': {
        post: {
          summary: "A new job starting from one of this job's checkpoints",
          parameters: [idParam],
          requestBody: {
            required: false,
            ...json({
              type: 'object',
              properties: { fromStep: { type: 'integer' }, steps: { type: 'integer' }, name: { type: 'string' } },
              additionalProperties: false,
            }),
          },
          responses: { 201: { description: 'The new job', ...json(ref('Job')) } },
        },
      },
      '/v1/jobs/{id}/plan': {
        get: {
          summary: 'The newest mining plan of the job (summary: version, step, statistics)',
          parameters: [idParam],
          responses: { 200: { description: 'Plan or null', ...json({ type: ['object', 'null'] }) } },
        },
      },
      '/v1/miner': {
        get: { summary: 'The live miner, or null', responses: { 200: { description: 'Miner', ...json({ type: ['object', 'null'] }) } } },
      },
      '/v1/evaluator': {
        get: {
          summary: 'The live evaluator (its metrics address), or null',
          responses: { 200: { description: 'Evaluator', ...json({ type: ['object', 'null'] }) } },
        },
      },
      '/v1/sweeps': {
        post: {
          summary:
            "Create a sweep: a base job spec, parameters over spec fields by dotted path, grid or seeded random search, an objective from the evaluator, a budget and an early-stopping rule; trials run as ordinary jobs in the base spec's queue",
          requestBody: { required: true, ...json(ref('SweepSpec')) },
          responses: {
            201: { description: 'The new sweep', ...json({ type: 'object' }) },
            400: { description: 'Invalid sweep spec (each bad field named)' },
          },
        },
        get: {
          summary: 'Sweeps, newest first (a team token: its queues only)',
          responses: { 200: { description: 'Sweeps', ...json({ type: 'array', items: { type: 'object' } }) } },
        },
      },
      '/v1/sweeps/{id}': {
        get: {
          summary: "A sweep: its trials (parameters, state, scores, stop reason), the leaderboard, and the best trial's best checkpoint",
          parameters: [idParam],
          responses: { 200: { description: 'Sweep', ...json({ type: 'object' }) }, 404: { description: 'No such sweep' } },
        },
      },
      '/v1/sweeps/{id}/cancel': {
        post: {
          summary: 'Cancel a sweep and its running trials',
          parameters: [idParam],
          responses: { 200: { description: 'Sweep', ...json({ type: 'object' }) } },
        },
      },
      '/v1/queues': {
        get: {
          summary:
            "Team queues as of the scheduler's last decision: quota (nominal ranks), weight, ranks held and borrowed, share of the pool, pending and running jobs, and the job waiting at the head of the line",
          responses: { 200: { description: 'Queues', ...json({ type: 'object' }) } },
        },
      },
      '/v1/workers': {
        get: {
          summary: 'Live workers and their jobs',
          responses: { 200: { description: 'Workers', ...json({ type: 'array', items: { type: 'object' } }) } },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an API token: read, admin or team:QUEUE (FACENET_API_TOKENS_FILE)' },
      },
      schemas: {
        JobSpec: z.toJSONSchema(jobSpecSchema, { io: 'input', unrepresentable: 'any' }),
        SweepSpec: z.toJSONSchema(sweepSpecSchema, { io: 'input', unrepresentable: 'any' }),
        Job: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            state: { enum: [...JOB_STATES] },
            step: { type: 'integer' },
            steps: { type: 'integer' },
            loss: { type: 'number' },
            imagesPerSecond: { type: 'number' },
            world: { type: 'object' },
            lastCheckpoint: {},
          },
        },
        Checkpoint: { type: 'object', properties: { step: { type: 'integer' }, dir: { type: 'string' }, createdAt: { type: 'string' } } },
        Error: { type: 'object', properties: { error: { type: 'string' } } },
        ValidationError: {
          type: 'object',
          properties: {
            error: { type: 'string' },
            issues: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
          },
        },
      },
    },
  };
}
