import { Command } from 'commander';
import { resolve } from 'node:path';
import { evaluatePairs, holdoutPairs, loadModel, selectBackend } from '@facenet/core';
import { JobSpec, sourceFromSpec, trainingSource } from '@facenet/protocol';
import { api, JobView, watch } from '../cluster/api-client';
import { LocalCluster } from '../cluster/local-cluster';
import { int, readSpecFile } from '../parse';
import { Output } from '../output';

interface UpFlags { job?: string; miner: boolean; workers: number; port: number; redis: string; prefix: string; checkpointRoot: string; backend?: string; json: boolean }

async function runUp(flags: UpFlags): Promise<void> {
  const out = new Output(flags.json);
  const cluster = new LocalCluster({
    workers: flags.workers, miner: flags.miner, redisUrl: flags.redis, prefix: flags.prefix, apiPort: flags.port,
    checkpointRoot: resolve(flags.checkpointRoot), backend: flags.backend, log: (l) => out.info(l),
  });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= cluster.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await cluster.start();
  out.data({ event: 'ready', url: cluster.apiUrl, redis: cluster.redisUrl, workers: flags.workers, prefix: flags.prefix });
  out.line(`cluster up: API ${cluster.apiUrl}/v1 (OpenAPI at /v1/openapi.json, metrics at /metrics), ${flags.workers} worker(s)${flags.miner ? ' and the miner' : ''}, Redis ${cluster.redisUrl}`);
  out.line(`launch a job:  facenet jobs create job.yaml --api ${cluster.apiUrl} --watch`);
  if (flags.job) {
    let code = 1;
    try {
      code = await runJob(cluster.apiUrl, flags.job, out);
    } finally {
      await cluster.stop();
    }
    process.exit(code);
  }
  out.line('Ctrl-C stops everything (workers finish their step first)');
  await new Promise(() => undefined); // runs until a signal
}

/** Submits a job, follows it to the end, and scores its last checkpoint on the held-out identities. */
async function runJob(url: string, specFile: string, out: Output): Promise<number> {
  const created = await api<JobView>(url, 'POST', '/v1/jobs', readSpecFile(specFile));
  out.line(`job ${created.id} created from ${specFile}`);
  const end = await watch({ api: url }, created.id, out);
  if (end.state !== 'completed') return 1;
  const job = await api<JobView & { spec: JobSpec }>(url, 'GET', `/v1/jobs/${created.id}`);
  if (job.spec.holdout > 0 && job.lastCheckpoint) {
    await selectBackend({ log: null });
    const source = sourceFromSpec(job.spec.dataset);
    const { model, manifest } = await loadModel(job.lastCheckpoint.dir);
    const held = trainingSource(source, job.spec.holdout, manifest.rng.seed).holdout;
    const r = (await evaluatePairs(model, source, holdoutPairs(source.index, held, { seed: manifest.rng.seed }))).report;
    model.dispose();
    out.data({ event: 'evaluation', job: job.id, step: job.step, ...r });
    out.line(`held-out (${held.length} identities, ${r.pairs} pairs): accuracy ${(100 * r.accuracy).toFixed(1)}%  VAL@FAR=${r.farTarget} ${(100 * r.val).toFixed(1)}%  AUC ${r.auc.toFixed(4)}  threshold ${r.threshold.toFixed(3)}`);
  }
  out.line(`checkpoint: ${job.lastCheckpoint?.dir}`);
  return 0;
}

export function upCommand(): Command {
  return new Command('up')
    .description('start a local cluster: Redis (if none answers), the coordinator, N workers and the miner')
    .option('--job <spec>', 'submit this job (YAML/JSON), follow it, evaluate it, then stop the cluster')
    .option('--workers <n>', 'worker processes', int, 2)
    .option('--no-miner', 'do not start the miner (jobs then train on uniform batches)')
    .option('--port <port>', 'REST API port (0 = any)', int, 8080)
    .option('--redis <url>', 'Redis URL ($REDIS_URL)', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
    .option('--prefix <name>', 'Redis key prefix (separates clusters sharing a Redis)', 'facenet')
    .option('--checkpoint-root <dir>', 'where jobs write checkpoints', 'runs/jobs')
    .option('--backend <name>', 'compute backend of the workers')
    .option('--json', 'JSON ready event on stdout', false)
    .action((flags: UpFlags) => runUp(flags));
}
