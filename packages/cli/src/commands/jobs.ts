import { Command } from 'commander';
import { int } from '../parse';
import { readSpecFile } from '../parse';
import { Output, pct } from '../output';
import { UsageError } from '../errors';

interface ApiFlags { api: string; json: boolean }

interface JobView {
  id: string; name?: string; state: string; requested: string | null; step: number; steps: number; loss?: number;
  activeFraction?: number; imagesPerSecond?: number; world: { size: number; generation: number }; lastCheckpoint: { step: number; dir: string } | null; error?: string;
}

/** A REST call; API errors become one line (with each invalid field for a 400). */
async function api<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${base.replace(/\/$/, '')}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new UsageError(`cannot reach the coordinator at ${base} (${(err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message}); is 'facenet up' running? (--api, $FACENET_API)`);
  }
  const data = (await res.json().catch(() => ({}))) as { error?: string; issues?: { path: string; message: string }[] };
  if (!res.ok) {
    const issues = data.issues?.map((i) => `\n  ${i.path}: ${i.message}`).join('') ?? '';
    throw new UsageError(`${data.error ?? `HTTP ${res.status}`}${issues}`);
  }
  return data as T;
}

const FINAL = ['completed', 'failed', 'cancelled'];

function line(j: JobView): string {
  const parts = [`${j.id}  ${j.state}${j.requested ? ` (${j.requested} requested)` : ''}  step ${j.step}/${j.steps}`];
  if (j.loss !== undefined) parts.push(`loss ${j.loss.toFixed(4)}`);
  if (j.activeFraction !== undefined) parts.push(`active ${pct(j.activeFraction)}`);
  if (j.imagesPerSecond !== undefined) parts.push(`${j.imagesPerSecond.toFixed(0)} img/s`);
  parts.push(`world ${j.world.size} (gen ${j.world.generation})`);
  if (j.lastCheckpoint) parts.push(`checkpoint @${j.lastCheckpoint.step}`);
  if (j.error) parts.push(`error: ${j.error}`);
  return parts.join('  ');
}

/** Polls a job and prints each new step until it stops running. */
async function watch(flags: ApiFlags, id: string, out: Output): Promise<JobView> {
  let lastStep = -1;
  let lastState = '';
  for (;;) {
    const j = await api<JobView>(flags.api, 'GET', `/v1/jobs/${id}`);
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

export function jobsCommand(): Command {
  const jobs = new Command('jobs').description('launch, watch and steer jobs on a running cluster (facenet up)');
  const withApi = (c: Command) => c.option('--api <url>', 'coordinator URL ($FACENET_API)', process.env.FACENET_API ?? 'http://127.0.0.1:8080').option('--json', 'JSON output', false);

  withApi(jobs.command('create').argument('<spec>', 'job spec (YAML or JSON)').option('--watch', 'follow progress until it ends', false))
    .description('create a job from a spec file')
    .action(async (spec: string, flags: ApiFlags & { watch: boolean }) => {
      const out = new Output(flags.json);
      const j = await api<JobView>(flags.api, 'POST', '/v1/jobs', readSpecFile(spec));
      out.line(`created ${j.id}`);
      if (flags.watch) {
        const end = await watch(flags, j.id, out);
        if (end.state === 'failed') process.exitCode = 1;
      } else out.data(j);
    });
  withApi(jobs.command('list')).description('list jobs').action(async (flags: ApiFlags) => {
    const out = new Output(flags.json);
    const all = await api<JobView[]>(flags.api, 'GET', '/v1/jobs');
    out.data(all);
    for (const j of all) out.line(line(j));
    if (all.length === 0) out.line('no jobs');
  });
  withApi(jobs.command('get').argument('<id>').option('--watch', 'follow progress', false)).description('show a job').action(async (id: string, flags: ApiFlags & { watch: boolean }) => {
    const out = new Output(flags.json);
    if (flags.watch) await watch(flags, id, out);
    else {
      const j = await api<JobView>(flags.api, 'GET', `/v1/jobs/${id}`);
      out.data(j);
      out.line(line(j));
    }
  });
  for (const verb of ['pause', 'cancel'] as const) {
    withApi(jobs.command(verb).argument('<id>')).description(`${verb} a job at its next step boundary`).action(async (id: string, flags: ApiFlags) => {
      const out = new Output(flags.json);
      const j = await api<JobView>(flags.api, 'POST', `/v1/jobs/${id}/${verb}`);
      out.data(j);
      out.line(line(j));
    });
  }
  withApi(jobs.command('resume').argument('<id>').option('--from-step <n>', 'resume from the checkpoint of this step', int))
    .description('resume a paused job (or rerun from a checkpoint)')
    .action(async (id: string, flags: ApiFlags & { fromStep?: number }) => {
      const out = new Output(flags.json);
      const j = await api<JobView>(flags.api, 'POST', `/v1/jobs/${id}/resume`, flags.fromStep === undefined ? {} : { fromStep: flags.fromStep });
      out.data(j);
      out.line(line(j));
    });
  withApi(jobs.command('fork').argument('<id>').option('--from-step <n>', 'checkpoint step (default: newest)', int).option('--steps <n>', 'total steps of the new job', int))
    .description('start a new job from a checkpoint of this one')
    .action(async (id: string, flags: ApiFlags & { fromStep?: number; steps?: number }) => {
      const out = new Output(flags.json);
      const j = await api<JobView>(flags.api, 'POST', `/v1/jobs/${id}/fork`, { fromStep: flags.fromStep, steps: flags.steps });
      out.data(j);
      out.line(`created ${j.id} from ${id}`);
    });
  withApi(jobs.command('checkpoints').argument('<id>')).description('list a job\'s checkpoints').action(async (id: string, flags: ApiFlags) => {
    const out = new Output(flags.json);
    const list = await api<{ step: number; dir: string; createdAt: string }[]>(flags.api, 'GET', `/v1/jobs/${id}/checkpoints`);
    out.data(list);
    for (const c of list) out.line(`step ${String(c.step).padStart(6)}  ${c.dir}  ${c.createdAt}`);
    if (list.length === 0) out.line('no checkpoints yet');
  });
  return jobs;
}
