import { Command } from 'commander';
import { Output } from '../output';
import type { QueueView } from '@facenet/coordinator';
import { api, withApiOptions } from '../cluster/api-client';

interface QueueStatus {
  queues: QueueView[];
  blocked: string | null;
  preemptions: { victim: string; to: number; by: string; reason: string }[];
}

export function queuesCommand(): Command {
  return withApiOptions(
    new Command('queues').description("the cluster's team queues: quota, weight, ranks held and borrowed, jobs waiting (GET /v1/queues)"),
    'read scope',
  ).action(async (flags: { api: string; token?: string; json: boolean }) => {
    const out = new Output(flags.json);
    const s = await api<QueueStatus>(flags, 'GET', '/v1/queues');
    out.data(s);
    out.line(
      `${'queue'.padEnd(20)} ${'quota'.padStart(5)} ${'weight'.padStart(6)} ${'ranks'.padStart(5)} ${'borrowed'.padStart(8)} ${'share'.padStart(6)} ${'running'.padStart(7)} ${'pending'.padStart(7)}`,
    );
    for (const q of s.queues)
      out.line(
        `${q.name.padEnd(20)} ${String(q.nominalRanks).padStart(5)} ${String(q.weight).padStart(6)} ${String(q.runningRanks).padStart(5)} ${String(q.borrowedRanks).padStart(8)} ${`${(q.share * 100).toFixed(0)}%`.padStart(6)} ${String(q.runningJobs).padStart(7)} ${String(q.pendingJobs).padStart(7)}`,
      );
    if (s.blocked) out.line(`waiting at the head of the line: ${s.blocked}`);
    for (const p of s.preemptions) out.line(`preempting: ${p.victim} -> ${p.to} rank(s) for ${p.by} (${p.reason})`);
  });
}
