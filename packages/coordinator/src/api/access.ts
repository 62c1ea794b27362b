import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { timingSafeEqual, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '@facenet/core';
import { isPublicPage } from './pages';

export type Scope = 'read' | 'admin';

/** Bearer tokens by scope; admin tokens can also read; a team token reads and steers its queues' jobs only. */
export interface ApiTokens {
  read: string[];
  admin: string[];
  teams: { token: string; queues: string[] }[];
}

/** Who is calling, as the access hook established it ('open': no tokens are configured). */
export type Caller = { kind: 'open' | 'admin' | 'read' } | { kind: 'team'; queues: string[] };

const callers = new WeakMap<FastifyRequest, Caller>();
export const callerOf = (req: FastifyRequest): Caller => callers.get(req) ?? { kind: 'open' };

/** Whether the caller may see and steer jobs of `queue` (everyone but a team token of other queues). */
export const mayUseQueue = (c: Caller, queue: string): boolean => c.kind !== 'team' || c.queues.includes(queue);

export const hasTokens = (t: ApiTokens): boolean => t.read.length + t.admin.length + t.teams.length > 0;

/**
 * Tokens from a file (one `read:TOKEN`, `admin:TOKEN` or `team:QUEUE[,QUEUE...]:TOKEN` per line,
 * `#` comments; a Kubernetes Secret mounted as a file) and from FACENET_API_TOKEN_READ /
 * FACENET_API_TOKEN_ADMIN. A team token submits to, sees, pauses, resumes, forks and exports the
 * jobs of its queues only; other jobs answer 404 to it, as if they did not exist.
 */
export function loadTokens(file: string | undefined, env: NodeJS.ProcessEnv = process.env): ApiTokens {
  const t: ApiTokens = { read: [], admin: [], teams: [] };
  if (file) {
    readFileSync(file, 'utf8')
      .split(/\r?\n/)
      .forEach((raw, i) => {
        const line = raw.trim();
        if (!line || line.startsWith('#')) return;
        const team = /^team:([a-z0-9][a-z0-9-]{0,62}(?:,[a-z0-9][a-z0-9-]{0,62})*):(\S{16,})$/.exec(line);
        if (team) {
          t.teams.push({ queues: (team[1] as string).split(','), token: team[2] as string });
          return;
        }
        const m = /^(read|admin):(\S{16,})$/.exec(line);
        if (!m)
          throw new ConfigError(
            `${file}:${i + 1}`,
            `expected 'read:TOKEN', 'admin:TOKEN' or 'team:QUEUE[,QUEUE...]:TOKEN' with a token of 16+ characters`,
          );
        t[m[1] as Scope].push(m[2] as string);
      });
  }
  for (const scope of ['read', 'admin'] as const) {
    const v = env[`FACENET_API_TOKEN_${scope.toUpperCase()}`];
    if (v) {
      if (v.length < 16) throw new ConfigError(`FACENET_API_TOKEN_${scope.toUpperCase()}`, `must be at least 16 characters`);
      t[scope].push(v);
    }
  }
  return t;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time comparison (of digests, so tokens of different lengths take the same time). */
function oneOf(token: string, candidates: string[]): boolean {
  const d = digest(token);
  let found = false;
  for (const c of candidates) found = timingSafeEqual(d, digest(c)) || found;
  return found;
}

export function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost';
}

export interface AccessOptions {
  tokens: ApiTokens;
  /** The interface the API binds: on loopback, only loopback Host headers are served (DNS rebinding). */
  host: string;
  /** The scope a POST needs. @default 'admin' (the coordinator's writes change jobs; the embedding service's POSTs only compute). */
  writeScope?: Scope;
}

const PUBLIC = new Set(['/healthz', '/metrics', '/v1/openapi.json']);

/**
 * Who may call what. With tokens configured, every /v1 route needs a bearer token: read scope
 * for GET, admin for anything that changes a job. Always: a write must carry a JSON body (so a
 * cross-site form or `text/plain` fetch cannot trigger it), a request whose Origin is not this
 * API's own is refused, and on loopback a foreign Host header is refused. No CORS headers are
 * ever sent, so browsers keep other sites from reading answers.
 */
export function registerAccessControl(app: FastifyInstance, o: AccessOptions): void {
  const enforceTokens = hasTokens(o.tokens);
  const deny = (reply: FastifyReply, code: number, error: string) => reply.code(code).send({ error });
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0] as string;
    if (isLoopback(o.host)) {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
      if (!isLoopback(host)) return deny(reply, 421, `unknown Host '${req.headers.host ?? ''}': this API answers loopback names only`);
    }
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let sameOrigin = false;
      try {
        sameOrigin = origin !== 'null' && new URL(origin).host === req.headers.host;
      } catch {
        /* a malformed Origin is foreign */
      }
      if (!sameOrigin) return deny(reply, 403, `cross-site request from ${origin} refused`);
    }
    const write = req.method !== 'GET' && req.method !== 'HEAD';
    if (write && !(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) {
      return deny(reply, 415, 'requests that change state must send a JSON body (content-type: application/json)');
    }
    if (!enforceTokens || PUBLIC.has(path) || isPublicPage(path)) return;
    const auth = req.headers.authorization ?? '';
    const token = /^Bearer (\S+)$/i.exec(auth)?.[1];
    if (!token)
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: 'a bearer token is required (Authorization: Bearer <token>; facenet --token or $FACENET_TOKEN)' });
    const admin = oneOf(token, o.tokens.admin);
    let team: ApiTokens['teams'][number] | undefined;
    for (const x of o.tokens.teams) if (oneOf(token, [x.token]) && !admin) team = x; // every one compared: no timing by position
    const read = !admin && !team && oneOf(token, o.tokens.read);
    if (!admin && !team && !read)
      return reply.code(401).header('www-authenticate', 'Bearer error="invalid_token"').send({ error: 'unknown token' });
    callers.set(req, admin ? { kind: 'admin' } : team ? { kind: 'team', queues: team.queues } : { kind: 'read' });
    // A team token writes to its own queues' jobs (the routes check which); a read token writes nothing.
    if (write && read && (o.writeScope ?? 'admin') === 'admin')
      return deny(reply, 403, 'this token may read but not change jobs (admin scope needed)');
  });
}
