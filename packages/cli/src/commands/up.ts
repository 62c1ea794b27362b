import { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { evaluatePairs, loadModel, selectBackend } from '@facenet/core';
import { evaluationSetFor } from '@facenet/evaluator';
import { EvaluationRecord, jobDataSource, JobSpec } from '@facenet/protocol';
import { redactUrl } from '@facenet/service-kit';
import { api, JobView, watch } from '../cluster/api-client';
import { LocalCluster } from '../cluster/local-cluster';
import { int, readSpecFile } from '../parse';
import { Output, pct } from '../output';

interface UpFlags {
  job?: string;
  miner: boolean;
  evaluator: boolean;
  workers: number;
  port: number;
  redis: string;
  prefix?: string;
  ephemeral: boolean;
  insecureRing: boolean;
  checkpointRoot: string;
  reportRoot?: string;
  backend?: string;
  json: boolean;
}

async function runUp(flags: UpFlags): Promise<void> {
  const out = new Output(flags.json);
  // An ephemeral cluster gets a prefix of its own, so removing its keys at stop touches nothing else.
  const prefix = flags.prefix ?? (flags.ephemeral ? `facenet-demo-${randomBytes(4).toString('hex')}` : 'facenet');
  const cluster = new LocalCluster({
    workers: flags.workers,
    miner: flags.miner,
    evaluator: flags.evaluator,
    redisUrl: flags.redis,
    prefix,
    apiPort: flags.port,
    removeKeysOnStop: flags.ephemeral,
    insecureRing: flags.insecureRing,
    checkpointRoot: resolve(flags.checkpointRoot),
    reportRoot: resolve(flags.reportRoot ?? join(flags.checkpointRoot, '..', 'reports')),
    backend: flags.backend,
    log: (l) => out.info(l),
    onCoordinatorExit: (reason) => {
      out.info(`${reason}: stopping the cluster`);
      stopping ??= cluster.stop().then(() => process.exit(2));
    },
  });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= cluster.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await cluster.start();
  // A worker started by hand joins this cluster's mutual-TLS ring with these files (FACENET_TLS_CA/CERT/KEY).
  const ringTls = cluster.tls ? { ca: cluster.tls.ca, cert: cluster.tls.cert, key: cluster.tls.key } : null;
  out.data({ event: 'ready', url: cluster.apiUrl, redis: redactUrl(cluster.redisUrl), workers: flags.workers, prefix, ringTls });
  out.line(
    `cluster up: API ${cluster.apiUrl}/v1 (OpenAPI at /v1/openapi.json, metrics at /metrics), ${flags.workers} worker(s)${flags.miner ? ', the miner' : ''}${flags.evaluator ? ', the evaluator' : ''}, Redis ${redactUrl(cluster.redisUrl)}`,
  );
  out.line(`launch a job:  facenet jobs create job.yaml --api ${cluster.apiUrl} --watch`);
  if (flags.job) {
    let code = 1;
    try {
      code = await runJob(cluster.apiUrl, flags.job, flags.evaluator, cluster.reportRoot, out);
    } finally {
      await cluster.stop();
    }
    process.exit(code);
  }
  out.line('Ctrl-C stops everything (workers finish their step first)');
  await new Promise(() => undefined); // runs until a signal
}

/**
 * Submits a job, follows it to the end, and reports the scores of its last checkpoint on its
 * evaluation pairs: the evaluator's (and its best checkpoint by VAL), or, without the
 * evaluator, computed here on the held-out identities.
 */
async function runJob(url: string, specFile: string, evaluator: boolean, reportRoot: string, out: Output): Promise<number> {
  const created = await api<JobView>(url, 'POST', '/v1/jobs', readSpecFile(specFile));
  out.line(`job ${created.id} created from ${specFile}`);
  const end = await watch({ api: url }, created.id, out);
  if (end.state !== 'completed') return 1;
  const job = await api<JobView & { spec: JobSpec }>(url, 'GET', `/v1/jobs/${created.id}`);
  const evaluable = job.spec.evaluation.enabled && (!!job.spec.evaluation.pairs || job.spec.holdout >= 2);
  if (evaluable && job.lastCheckpoint && evaluator) {
    const last = await waitForEvaluation(url, job.id, job.lastCheckpoint.step, out);
    if (last) {
      const best = (await api<JobView>(url, 'GET', `/v1/jobs/${job.id}`)).evaluation.best;
      out.data({ event: 'evaluation', job: job.id, ...last, best });
      out.line(
        `evaluation of step ${last.step} (${last.pairs} ${last.set} pairs): accuracy ${pct(last.accuracy)}  VAL@FAR=${last.farTarget} ${pct(last.val)}  AUC ${last.auc.toFixed(4)}  threshold ${last.threshold.toFixed(3)}`,
      );
      if (best && best.step !== last.step)
        out.line(`best checkpoint by VAL: step ${best.step} (VAL ${pct(best.val)}, accuracy ${pct(best.accuracy)}): ${best.checkpointDir}`);
      if (last.report) out.line(`report: ${join(reportRoot, last.report)}`);
    }
  } else if (evaluable && job.lastCheckpoint) {
    // No evaluator: score the last checkpoint here, on the pairs the evaluator would have used.
    await selectBackend({ log: null });
    const { model, manifest } = await loadModel(job.lastCheckpoint.dir);
    const es = await evaluationSetFor(job.spec, manifest.rng.seed, () => jobDataSource(job.spec.dataset));
    const r = (await evaluatePairs(model, es.source, es.set, { farTarget: job.spec.evaluation.farTarget })).report;
    model.dispose();
    out.data({ event: 'evaluation', job: job.id, step: job.step, ...r });
    out.line(
      `evaluation of step ${job.step} (${r.pairs} ${es.kind} pairs): accuracy ${pct(r.accuracy)}  VAL@FAR=${r.farTarget} ${pct(r.val)}  AUC ${r.auc.toFixed(4)}  threshold ${r.threshold.toFixed(3)}`,
    );
  }
  out.line(`checkpoint: ${job.lastCheckpoint?.dir}`);
  return 0;
}

/** The evaluator's record of one checkpoint, waited for (it evaluates after training wrote it). */
async function waitForEvaluation(
  url: string,
  jobId: string,
  step: number,
  out: Output,
  timeoutMs = 30 * 60_000,
): Promise<EvaluationRecord | undefined> {
  out.info(`[facenet] waiting for the evaluator to score step ${step}`);
  for (const end = Date.now() + timeoutMs; Date.now() < end; await new Promise((r) => setTimeout(r, 500))) {
    const found = (await api<EvaluationRecord[]>(url, 'GET', `/v1/jobs/${jobId}/evaluations`)).find((e) => e.step === step);
    if (found) return found;
  }
  out.info(`[facenet] no evaluation of step ${step} after ${timeoutMs / 60_000} min; see the evaluator's log`);
  return undefined;
}

export function upCommand(): Command {
  return new Command('up')
    .description('start a local cluster: Redis (if none answers), the coordinator, N workers, the miner and the evaluator')
    .option('--job <spec>', 'submit this job (YAML/JSON), follow it, evaluate it, then stop the cluster')
    .option('--workers <n>', 'worker processes', int, 2)
    .option('--no-miner', 'do not start the miner (jobs then train on uniform batches)')
    .option('--no-evaluator', 'do not start the evaluator (no VAL/FAR per checkpoint; --job then scores the last one itself)')
    .option('--port <port>', 'REST API port (0 = any)', int, 8080)
    .option('--redis <url>', 'Redis URL ($REDIS_URL)', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
    .option(
      '--prefix <name>',
      'Redis key prefix (separates clusters sharing a Redis; default facenet, or facenet-demo-<random> with --ephemeral)',
    )
    .option(
      '--insecure-ring',
      "run the workers' ring (gradients, weight checksums) in plaintext instead of mutual TLS with a CA made at start",
      false,
    )
    .option(
      '--ephemeral',
      'delete every Redis key the cluster made when it stops (npm start does: the demo leaves nothing in Redis; checkpoints and reports stay on disk)',
      false,
    )
    .option('--checkpoint-root <dir>', 'where jobs write checkpoints', 'runs/jobs')
    .option(
      '--report-root <dir>',
      "where the evaluator writes each checkpoint's HTML report (default: beside the checkpoint root, runs/reports)",
    )
    .option('--backend <name>', 'compute backend of the workers')
    .option('--json', 'JSON ready event on stdout', false)
    .action((flags: UpFlags) => runUp(flags));
}
