import { Command } from 'commander';
import { resolve } from 'node:path';
import { LocalCluster } from '../cluster/local-cluster';
import { int } from '../parse';
import { Output } from '../output';

interface UpFlags { workers: number; port: number; redis: string; prefix: string; checkpointRoot: string; backend?: string; json: boolean }

async function runUp(flags: UpFlags): Promise<void> {
  const out = new Output(flags.json);
  const cluster = new LocalCluster({
    workers: flags.workers, redisUrl: flags.redis, prefix: flags.prefix, apiPort: flags.port,
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
  out.line(`cluster up: API ${cluster.apiUrl}/v1 (OpenAPI at /v1/openapi.json, metrics at /metrics), ${flags.workers} worker(s), Redis ${cluster.redisUrl}`);
  out.line(`launch a job:  facenet jobs create job.yaml --api ${cluster.apiUrl} --watch`);
  out.line('Ctrl-C stops everything (workers finish their step first)');
  await new Promise(() => undefined); // runs until a signal
}

export function upCommand(): Command {
  return new Command('up')
    .description('start a local cluster: Redis (if none answers), the coordinator and N workers')
    .option('--workers <n>', 'worker processes', int, 2)
    .option('--port <port>', 'REST API port (0 = any)', int, 8080)
    .option('--redis <url>', 'Redis URL ($REDIS_URL)', process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
    .option('--prefix <name>', 'Redis key prefix (separates clusters sharing a Redis)', 'facenet')
    .option('--checkpoint-root <dir>', 'where jobs write checkpoints', 'runs/jobs')
    .option('--backend <name>', 'compute backend of the workers')
    .option('--json', 'JSON ready event on stdout', false)
    .action((flags: UpFlags) => runUp(flags));
}
