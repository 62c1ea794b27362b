/**
 * The pool scheduler (planAllowances) on a simulated pool: 256 ranks, 1,000 jobs from 4 queues
 * (weights 4:2:1:1, nominal ranks in the same proportion), sizes 1-64 ranks (minimum half the size,
 * a quarter of them rigid), durations 20-200 ticks at full size, all submitted at tick 0, and a
 * burst of 20 urgent jobs (priority 10) at tick 300. A tick is a step boundary: running jobs take
 * their new allowance, pending ones start; a job's work is rank-ticks, so one shrunk or stopped
 * (checkpointed and requeued, as the coordinator does) keeps all its progress. Run twice, with and
 * without backfill, same jobs.
 *
 *   npx tsx bench/scheduler.ts [--ranks 256] [--jobs 1000] [--seed 1]
 *
 * Prints JSON: utilisation while work waits, each queue's share of the ranks against its weight
 * while all four queues have work waiting (mean absolute error), mean waits (all jobs, jobs of
 * 32 ranks or more at their minimum, the urgent burst), the first blocked head's wait,
 * preemptions by reason, decision latency (p50, p99,
 * max over every decision of the run, and at the start: 1,000 pending jobs over 256 ranks), and
 * the bench process's CPU seconds.
 */
import { parseArgs } from 'node:util';
import { parseQueues, planAllowances, SchedJob } from '@facenet/coordinator';
import { rngFor } from '@facenet/core';

const { values } = parseArgs({
  options: { ranks: { type: 'string', default: '256' }, jobs: { type: 'string', default: '1000' }, seed: { type: 'string', default: '1' } },
});
const R = Number(values.ranks);
const N = Number(values.jobs);
const weights = { a: 4, b: 2, c: 1, d: 1 };
const queues = parseQueues(
  Object.entries(weights)
    .map(([q, w]) => `${q}=${Math.round((R * w) / 8)}:${w}`)
    .join(','),
);

interface SimJob extends SchedJob {
  work: number;
  done: number;
  submitted: number;
  started?: number;
  finished?: number;
}

function jobsFor(seed: string): SimJob[] {
  const rng = rngFor('scheduler-bench', seed);
  const names = Object.keys(weights);
  const jobs: SimJob[] = [];
  for (let i = 0; i < N + 20; i++) {
    const urgent = i >= N;
    const size = Math.max(1, Math.round(2 ** (rng() * 6))); // 1..64, log-uniform
    const rigid = rng() < 0.25;
    jobs.push({
      id: `j${i}`,
      queue: urgent ? 'a' : (names[Math.floor(rng() * names.length)] as string),
      priority: urgent ? 10 : 0,
      order: i,
      worldSize: size,
      minRanks: rigid ? size : Math.max(1, Math.ceil(size / 2)),
      holds: 0,
      work: size * (20 + Math.floor(rng() * 180)),
      done: 0,
      submitted: urgent ? 300 : 0,
    });
  }
  return jobs;
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] as number;

function simulate(backfill: boolean) {
  const jobs = jobsFor(values.seed!);
  const latencies: number[] = [];
  let busyWhileWaiting = 0;
  let ticksWaiting = 0;
  const preemptions: Record<string, number> = { priority: 0, reclaim: 0, backfill: 0 };
  let shareError = 0;
  let shareTicks = 0;
  let firstBlocked: { id: string; since: number } | undefined;
  let headWait: number | undefined;
  let startLatency = 0;
  for (let tick = 0; jobs.some((j) => j.finished === undefined); tick++) {
    if (tick > 100_000) throw new Error('no progress');
    const active = jobs.filter((j) => j.submitted <= tick && j.finished === undefined);
    const free = R - active.reduce((n, j) => n + j.holds, 0);
    const t0 = performance.now();
    const s = planAllowances(active, queues, free, { backfill });
    const ms = performance.now() - t0;
    latencies.push(ms);
    if (tick === 0) startLatency = ms;
    for (const p of s.preemptions) preemptions[p.reason]!++;
    // The step boundary: shrinks and stops first, then starts and growth on the ranks freed.
    for (const j of active) {
      const a = s.allowance.get(j.id) ?? 0;
      if (a < j.holds) j.holds = a;
    }
    let idle = R - active.reduce((n, j) => n + j.holds, 0);
    for (const j of active) {
      const a = s.allowance.get(j.id) ?? 0;
      if (a > j.holds && (j.holds > 0 || a >= j.minRanks) && idle >= a - j.holds) {
        idle -= a - j.holds;
        if (j.holds === 0) j.started ??= tick;
        j.holds = a;
        j.backfilledFor = s.backfilled.get(j.id) ?? j.backfilledFor;
      }
    }
    // As the coordinator does: a backfilled job whose head no longer waits is an ordinary job again.
    const heads = new Set(active.filter((j) => j.holds === 0).map((j) => j.id));
    for (const j of active) if (j.backfilledFor && !heads.has(j.backfilledFor)) j.backfilledFor = undefined;
    if (s.blocked && !firstBlocked) firstBlocked = { id: s.blocked, since: tick };
    if (firstBlocked && headWait === undefined && (jobs.find((j) => j.id === firstBlocked!.id)?.holds ?? 0) > 0)
      headWait = tick - firstBlocked.since;
    const held = active.reduce((n, j) => n + j.holds, 0);
    const waiting = active.some((j) => j.holds === 0);
    if (waiting) {
      ticksWaiting++;
      busyWhileWaiting += held / R;
    }
    const backlogged = Object.keys(weights).every((q) => active.some((j) => j.queue === q && j.holds === 0));
    if (backlogged && held > 0) {
      shareTicks++;
      for (const [q, w] of Object.entries(weights)) {
        const mine = active.filter((j) => j.queue === q).reduce((n, j) => n + j.holds, 0);
        shareError += Math.abs(mine / held - w / 8) / 4;
      }
    }
    for (const j of active) {
      j.done += j.holds;
      if (j.done >= j.work) {
        j.finished = tick;
        j.holds = 0;
      }
    }
  }
  const makespan = Math.max(...jobs.map((j) => j.finished as number));
  return {
    backfill,
    ticks: makespan,
    utilisationWhileWorkWaits: Number((busyWhileWaiting / Math.max(1, ticksWaiting)).toFixed(4)),
    shareMeanAbsError: Number((shareError / Math.max(1, shareTicks)).toFixed(4)),
    ticksAllQueuesBacklogged: shareTicks,
    firstBlockedHead: firstBlocked ? { id: firstBlocked.id, waitedTicks: headWait } : null,
    meanWaitTicks: Number((jobs.reduce((n, j) => n + ((j.started ?? 0) - j.submitted), 0) / jobs.length).toFixed(1)),
    bigJobsMeanWaitTicks: Number(
      (
        jobs.filter((j) => j.minRanks >= 32).reduce((n, j) => n + ((j.started ?? 0) - j.submitted), 0) /
        Math.max(1, jobs.filter((j) => j.minRanks >= 32).length)
      ).toFixed(1),
    ),
    urgentMeanWaitTicks: Number(
      (jobs.filter((j) => j.priority > 0).reduce((n, j) => n + ((j.started ?? 0) - j.submitted), 0) / 20).toFixed(1),
    ),
    preemptions,
    decisionMs: {
      atStart: Number(startLatency.toFixed(3)),
      p50: Number(quantile(latencies, 0.5).toFixed(3)),
      p99: Number(quantile(latencies, 0.99).toFixed(3)),
      max: Number(Math.max(...latencies).toFixed(3)),
    },
  };
}

const cpu0 = process.cpuUsage();
const runs = [simulate(true), simulate(false)];
const cpu = process.cpuUsage(cpu0);
console.log(
  JSON.stringify(
    { benchmark: 'scheduler', ranks: R, jobs: N, urgent: 20, queues, runs, cpuSeconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)) },
    null,
    1,
  ),
);
