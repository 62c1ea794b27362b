import { Command } from 'commander';
import { int, readSpecFile } from '../parse';
import { Output } from '../output';
import type { StepRecord } from '@facenet/protocol';
import { api, apiPage, JobView, line, watch, withApiOptions } from '../cluster/api-client';

interface ApiFlags {
  api: string;
  token?: string;
  json: boolean;
}

export function jobsCommand(): Command {
  const jobs = new Command('jobs').description('launch, watch and steer jobs on a running cluster (facenet up)');
  const withApi = (c: Command) => withApiOptions(c, 'read scope for get/list, admin to change jobs');
  withApi(jobs.command('create').argument('<spec>', 'job spec (YAML or JSON)').option('--watch', 'follow progress until it ends', false))
    .description('create a job from a spec file')
    .action(async (spec: string, flags: ApiFlags & { watch: boolean }) => {
      const out = new Output(flags.json);
      const j = await api<JobView>(flags, 'POST', '/v1/jobs', readSpecFile(spec));
      out.line(
        j.state === 'admitting'
          ? `created ${j.id}, admitting: its dataset is being indexed (facenet jobs get ${j.id} shows progress)`
          : `created ${j.id}`,
      );
      if (flags.watch) {
        const end = await watch(flags, j.id, out);
        if (end.state === 'failed') process.exitCode = 1;
      } else out.data(j);
    });
  withApi(
    jobs
      .command('list')
      .option('--limit <n>', 'jobs per page (1-500)', '50')
      .option('--state <state>', 'only jobs in this state (pending, running, paused, completed, failed, cancelled)')
      .option('--cursor <cursor>', 'the page after this cursor (printed at the end of the previous page)'),
  )
    .description('list jobs, newest first, a page at a time')
    .action(async (flags: ApiFlags & { limit: string; state?: string; cursor?: string }) => {
      const out = new Output(flags.json);
      const query = new URLSearchParams({
        limit: flags.limit,
        ...(flags.state ? { state: flags.state } : {}),
        ...(flags.cursor ? { cursor: flags.cursor } : {}),
      });
      const page = await apiPage<JobView>(flags, `/v1/jobs?${query.toString()}`);
      out.data(page.items); // --json: the page as an array; the next page's cursor on stderr
      for (const j of page.items) out.line(line(j));
      if (page.items.length === 0) out.line('no jobs');
      if (page.next) out.info(`more: facenet jobs list --cursor ${page.next}${flags.state ? ` --state ${flags.state}` : ''}`);
    });
  withApi(jobs.command('get').argument('<id>').option('--watch', 'follow progress', false))
    .description('show a job')
    .action(async (id: string, flags: ApiFlags & { watch: boolean }) => {
      const out = new Output(flags.json);
      if (flags.watch) await watch(flags, id, out);
      else {
        const j = await api<JobView>(flags, 'GET', `/v1/jobs/${id}`);
        out.data(j);
        out.line(line(j));
      }
    });
  withApi(
    jobs
      .command('history')
      .argument('<id>')
      .option('--limit <n>', 'steps per page, newest last (1-1000)', '50')
      .option('--cursor <n>', 'the older page this cursor names (printed at the end of the previous page)'),
  )
    .description("a job's step history (loss, timings, faults per step); archived jobs' too")
    .action(async (id: string, flags: ApiFlags & { limit: string; cursor?: string }) => {
      const out = new Output(flags.json);
      const query = new URLSearchParams({ limit: flags.limit, ...(flags.cursor ? { cursor: flags.cursor } : {}) });
      const page = await apiPage<StepRecord>(flags, `/v1/jobs/${encodeURIComponent(id)}/history?${query.toString()}`);
      out.data(page.items);
      for (const s of page.items) out.line(stepLine(s));
      if (page.items.length === 0) out.line('no steps recorded');
      if (page.next) out.info(`older: facenet jobs history ${id} --cursor ${page.next}`);
    });
  for (const verb of ['pause', 'cancel'] as const) {
    withApi(jobs.command(verb).argument('<id>'))
      .description(`${verb} a job at its next step boundary`)
      .action(async (id: string, flags: ApiFlags) => {
        const out = new Output(flags.json);
        const j = await api<JobView>(flags, 'POST', `/v1/jobs/${id}/${verb}`);
        out.data(j);
        out.line(line(j));
      });
  }
  withApi(jobs.command('resume').argument('<id>').option('--from-step <n>', 'resume from the checkpoint of this step', int))
    .description('resume a paused job (or rerun from a checkpoint)')
    .action(async (id: string, flags: ApiFlags & { fromStep?: number }) => {
      const out = new Output(flags.json);
      const j = await api<JobView>(
        flags,
        'POST',
        `/v1/jobs/${id}/resume`,
        flags.fromStep === undefined ? {} : { fromStep: flags.fromStep },
      );
      out.data(j);
      out.line(line(j));
    });
  withApi(
    jobs
      .command('fork')
      .argument('<id>')
      .option('--from-step <n>', 'checkpoint step (default: newest)', int)
      .option('--steps <n>', 'total steps of the new job', int),
  )
    .description('start a new job from a checkpoint of this one')
    .action(async (id: string, flags: ApiFlags & { fromStep?: number; steps?: number }) => {
      const out = new Output(flags.json);
      const j = await api<JobView>(flags, 'POST', `/v1/jobs/${id}/fork`, { fromStep: flags.fromStep, steps: flags.steps });
      out.data(j);
      out.line(`created ${j.id} from ${id}`);
    });
  withApi(jobs.command('checkpoints').argument('<id>'))
    .description("list a job's checkpoints")
    .action(async (id: string, flags: ApiFlags) => {
      const out = new Output(flags.json);
      const list = await api<{ step: number; dir: string; createdAt: string }[]>(flags, 'GET', `/v1/jobs/${id}/checkpoints`);
      out.data(list);
      for (const c of list) out.line(`step ${String(c.step).padStart(6)}  ${c.dir}  ${c.createdAt}`);
      if (list.length === 0) out.line('no checkpoints yet');
    });
  return jobs;
}

/** One step of a history: what a person scanning a run looks for first. */
function stepLine(s: StepRecord): string {
  const parts = [
    `step ${s.step}`,
    `loss ${Number.isFinite(s.loss) ? s.loss.toFixed(4) : String(s.loss)}`,
    `active ${(s.activeFraction * 100).toFixed(0)}%`,
  ];
  parts.push(`${s.images} images`, `${s.stepMs.toFixed(0)} ms`, `${s.imagesPerSecond.toFixed(0)} img/s`);
  if (s.rolledBack) parts.push('rolled back');
  return parts.join('  ');
}
