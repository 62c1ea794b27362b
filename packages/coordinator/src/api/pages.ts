import { FastifyInstance, FastifyReply } from 'fastify';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { EvaluationRecord } from '@facenet/protocol';
import { ReportNotFoundError } from '../errors';

export interface PagesDeps {
  evaluations: (jobId: string) => Promise<EvaluationRecord[]>;
  /** Throws JobNotFoundError for an unknown job. */
  jobExists: (jobId: string) => Promise<void>;
  reportRoot: string;
}

/** The status page may run only its own script, talk only to this API, and be framed by nobody. */
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
/**
 * A report is one self-contained file (inline styles, data: images): it may load nothing and run
 * nothing, and `sandbox` gives it an opaque origin, so even a script smuggled into it could not
 * read the status page's storage (where the API token is kept).
 */
const REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox";
/** How long a signed report link works. */
const REPORT_LINK_MS = 60_000;

/**
 * The status page and the evaluator's reports, with the headers a browser needs to keep them
 * safe: a CSP on each, no framing (clickjacking of pause/cancel), no MIME sniffing, no referrer.
 * A report opens either at its API route (read scope) or, from the page with a token, at a
 * signed link valid for a minute (`GET .../report-link`), since a new tab cannot carry the token.
 */
export function registerPages(app: FastifyInstance, d: PagesDeps): void {
  app.addHook('onSend', async (_req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
  });
  const statics = join(__dirname, '..', '..', 'static');
  const page = readFileSync(join(statics, 'status.html'), 'utf8');
  const script = readFileSync(join(statics, 'status.js'), 'utf8');
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').header('content-security-policy', PAGE_CSP).send(page));
  app.get('/status.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(script));

  const key = randomBytes(32); // per process: a restarted coordinator's links are new ones
  const sign = (payload: string) => createHmac('sha256', key).update(payload).digest('base64url');

  const sendReport = async (reply: FastifyReply, jobId: string, step: number) => {
    const e = (await d.evaluations(jobId)).find((x) => x.step === step);
    if (!e) throw new ReportNotFoundError(jobId, step, 'that step was not evaluated');
    if (!e.report || !d.reportRoot) throw new ReportNotFoundError(jobId, step, 'the evaluator writes no reports (FACENET_REPORT_ROOT)');
    // The path comes from Redis: never follow it out of the report root.
    const file = resolve(d.reportRoot, e.report);
    if (!file.startsWith(d.reportRoot + sep)) throw new ReportNotFoundError(jobId, step, 'its path leaves the report root');
    const html = await readFile(file).catch(() => undefined);
    if (!html) throw new ReportNotFoundError(jobId, step, `${e.report} is not in ${d.reportRoot}`);
    return reply.type('text/html; charset=utf-8').header('content-security-policy', REPORT_CSP).send(html);
  };

  app.get<{ Params: { id: string; step: string } }>('/v1/jobs/:id/evaluations/:step/report', async (req, reply) => {
    await d.jobExists(req.params.id);
    return sendReport(reply, req.params.id, Number(req.params.step));
  });
  app.get<{ Params: { id: string; step: string } }>('/v1/jobs/:id/evaluations/:step/report-link', async (req) => {
    await d.jobExists(req.params.id);
    const payload = Buffer.from(JSON.stringify({ j: req.params.id, s: Number(req.params.step), e: Date.now() + REPORT_LINK_MS })).toString(
      'base64url',
    );
    return { url: `/report?link=${payload}.${sign(payload)}`, expiresInMs: REPORT_LINK_MS };
  });
  // A query string, not a path parameter: a signed link is longer than a route parameter may be.
  app.get<{ Querystring: { link?: string } }>('/report', async (req, reply) => {
    const [payload = '', mac = ''] = String(req.query.link ?? '').split('.');
    const expected = Buffer.from(sign(payload));
    const given = Buffer.from(mac);
    const valid = given.length === expected.length && timingSafeEqual(given, expected);
    const claim = valid ? (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { j: string; s: number; e: number }) : undefined;
    if (!claim || claim.e < Date.now())
      return reply.code(403).send({ error: 'this report link is invalid or expired; open the report again from the status page' });
    return sendReport(reply, claim.j, claim.s);
  });
}

/** Paths served without a token: the page, its script and the signed report links (which carry their own proof). */
export const isPublicPage = (path: string) =>
  path === '/' || path === '/status.js' || path === '/report' || path === '/docs' || path.startsWith('/docs/');
