import type { Command } from 'commander';
/** The coordinator REST API as the CLI uses it: calls, one-line job summaries, progress watching. */
import type { JobView } from '@facenet/protocol';
import { Output, pct } from '../output';
import { UsageError } from '../errors';

export type { JobView };

/** A coordinator and the bearer token to call it with (--token, $FACENET_TOKEN). */
export interface ApiTarget {
  api: string;
  token?: string;
}

/**
 * A REST call; API errors become one line (with each invalid field for a 400). Writes always
 * carry a JSON body: the API refuses state changes without one (cross-site protection).
 */
/** The options every command that calls the coordinator takes: --api, --token (its scope said by `tokenHelp`), --json. */
export function withApiOptions(c: Command, tokenHelp: string): Command {
  return c
    .option('--api <url>', 'coordinator URL ($FACENET_API)', process.env.FACENET_API ?? 'http://127.0.0.1:8080')
    .option('--token <token>', `API bearer token ($FACENET_TOKEN; ${tokenHelp})`, process.env.FACENET_TOKEN)
    .option('--json', 'JSON output', false);
}

export async function api<T>(target: string | ApiTarget, method: string, path: string, body?: unknown): Promise<T> {
  return (await apiWithHeaders<T>(target, method, path, body)).data;
}

/** A GET of one page of a paged list: the items and the next page's cursor (X-Next-Cursor), if any. */
export async function apiPage<T>(target: string | ApiTarget, path: string): Promise<{ items: T[]; next?: string }> {
  const r = await apiWithHeaders<T[]>(target, 'GET', path);
  return { items: r.data, next: r.headers.get('x-next-cursor') ?? undefined };
}

async function apiWithHeaders<T>(
  target: string | ApiTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ data: T; headers: Headers }> {
  const { api: base, token } = typeof target === 'string' ? { api: target, token: process.env.FACENET_TOKEN } : target;
  const payload = body ?? (method === 'GET' ? undefined : {});
  const headers: Record<string, string> = payload === undefined ? {} : { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(`${base.replace(/\/$/, '')}${path}`, {
      method,
      headers,
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
  } catch (err) {
    throw new UsageError(
      `cannot reach the coordinator at ${base} (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}); is 'facenet up' running? (--api, $FACENET_API)`,
    );
  }
  const data = (await res.json().catch(() => ({}))) as { error?: string; issues?: { path: string; message: string }[] };
  if (!res.ok) {
    const issues = data.issues?.map((i) => `\n  ${i.path}: ${i.message}`).join('') ?? '';
    throw new UsageError(`${data.error ?? `HTTP ${res.status}`}${issues}`);
  }
  return { data: data as T, headers: res.headers };
}

export const FINAL = ['completed', 'failed', 'cancelled'];

export function line(j: JobView): string {
  const parts = [`${j.id}  ${j.state}${j.requested ? ` (${j.requested} requested)` : ''}  step ${j.step}/${j.steps}`];
  if (j.loss !== undefined) parts.push(`loss ${j.loss.toFixed(4)}`);
  if (j.classificationLoss !== undefined) parts.push(`classification ${j.classificationLoss.toFixed(3)}`);
  if (j.activeFraction !== undefined) parts.push(`active ${pct(j.activeFraction)}`);
  if (j.imagesPerSecond !== undefined) parts.push(`${j.imagesPerSecond.toFixed(0)} img/s`);
  parts.push(`world ${j.world.size} (gen ${j.world.generation})`);
  if (j.lastCheckpoint) parts.push(`checkpoint @${j.lastCheckpoint.step}`);
  if (j.error) parts.push(`error: ${j.error}`);
  if (j.admission) parts.push(`indexing its dataset: ${j.admission.images} images so far`);
  const archivedAt = (j as { archivedAt?: string }).archivedAt;
  if (archivedAt) parts.push(`archived ${archivedAt}`);
  return parts.join('  ');
}

/** Polls a job and prints each new step until it stops running. */
export async function watch(flags: ApiTarget, id: string, out: Output): Promise<JobView> {
  let lastStep = -1;
  let lastState = '';
  for (;;) {
    const j = await api<JobView>(flags, 'GET', `/v1/jobs/${id}`);
    if (j.step !== lastStep || j.state !== lastState) {
      out.line(line(j));
      out.data(j);
      lastStep = j.step;
      lastState = j.state;
    }
    if (FINAL.includes(j.state) || j.state === 'paused') return j;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
