import { Command } from 'commander';
import { readSpecFile } from '../parse';
import { Output } from '../output';
import { api, withApiOptions } from '../cluster/api-client';

interface SweepView {
  id: string;
  name?: string;
  state: string;
  objective: { metric: string; goal: string };
  budget: { maxTrials: number; parallel: number; rankHoursUsed: number };
  trials: {
    index: number;
    jobId?: string;
    state: string;
    params: Record<string, unknown>;
    best?: { score: number; step: number };
    stopReason?: string;
    error?: string;
  }[];
  best: { trial: number; jobId?: string; score: number; step: number; checkpoint: { dir: string } | null } | null;
}
interface ApiFlags {
  api: string;
  token?: string;
  json: boolean;
}

const summary = (s: SweepView) =>
  `${s.id}  ${s.state.padEnd(9)} ${s.trials.length}/${s.budget.maxTrials} trials  best ${s.objective.metric} ${s.best ? `${s.best.score.toFixed(4)} (trial ${s.best.trial}, step ${s.best.step})` : '-'}  ${s.name ?? ''}`;

function show(out: Output, s: SweepView): void {
  out.line(summary(s));
  for (const t of s.trials)
    out.line(
      `  #${String(t.index).padEnd(3)} ${t.state.padEnd(9)} ${t.best ? t.best.score.toFixed(4) : '  -   '}  ${JSON.stringify(t.params)}  ${t.jobId ?? ''}${t.stopReason ? `  (${t.stopReason})` : ''}${t.error ? `  (${t.error})` : ''}`,
    );
  if (s.best?.checkpoint) out.line(`best checkpoint: ${s.best.checkpoint.dir}  (facenet export ${s.best.checkpoint.dir} ...)`);
}

export function sweepsCommand(): Command {
  const sweeps = new Command('sweeps').description(
    'search recipes: trials as jobs, losers stopped early by the evaluator’s scores (POST /v1/sweeps)',
  );
  const withApi = (c: Command) => withApiOptions(c, 'read scope to look, admin or a team token of the queue to create or cancel');
  withApi(sweeps.command('create').argument('<spec>', 'sweep spec (YAML or JSON)').option('--watch', 'follow until it ends', false))
    .description('create a sweep from a spec file')
    .action(async (spec: string, flags: ApiFlags & { watch: boolean }) => {
      const out = new Output(flags.json);
      let s = await api<SweepView>(flags, 'POST', '/v1/sweeps', readSpecFile(spec));
      out.line(`created ${s.id}`);
      let last = '';
      while (flags.watch && s.state === 'running') {
        await new Promise((r) => setTimeout(r, 2000));
        s = await api<SweepView>(flags, 'GET', `/v1/sweeps/${encodeURIComponent(s.id)}`);
        const now = summary(s);
        if (now !== last) out.info(now);
        last = now;
      }
      out.data(s);
      if (flags.watch) show(out, s);
    });
  withApi(sweeps.command('list'))
    .description('list sweeps, newest first')
    .action(async (flags: ApiFlags) => {
      const out = new Output(flags.json);
      const list = await api<SweepView[]>(flags, 'GET', '/v1/sweeps');
      out.data(list);
      for (const s of list) out.line(summary(s));
      if (!list.length) out.line('no sweeps');
    });
  withApi(sweeps.command('show').argument('<id>'))
    .description('a sweep: its trials, their parameters, scores and stop reasons, the best checkpoint')
    .action(async (id: string, flags: ApiFlags) => {
      const out = new Output(flags.json);
      const s = await api<SweepView>(flags, 'GET', `/v1/sweeps/${encodeURIComponent(id)}`);
      out.data(s);
      show(out, s);
    });
  withApi(sweeps.command('cancel').argument('<id>'))
    .description('cancel a sweep and its running trials')
    .action(async (id: string, flags: ApiFlags) => {
      const out = new Output(flags.json);
      const s = await api<SweepView>(flags, 'POST', `/v1/sweeps/${encodeURIComponent(id)}/cancel`, {});
      out.data(s);
      out.line(`${s.id} ${s.state}`);
    });
  return sweeps;
}
