import type { Command } from 'commander';

/**
 * Every `facenet` command by name, with the one-line summary `facenet --help` lists and a loader
 * for its full definition. The definitions import the training library, the coordinator or
 * TensorFlow.js (0.4-0.7 s of module loading), so only the command being run is loaded: `facenet
 * --help` and `--version` load none. test/unit/cli-index.test.ts keeps each summary equal to its
 * command's own description.
 */
export const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  train: {
    summary: 'train an embedding model in this process (built-in synthetic faces unless --data)',
    load: async () => (await import('./commands/train.js')).trainCommand(),
  },
  embed: {
    summary: 'embed an image or every image under a folder',
    load: async () => (await import('./commands/embed.js')).embedCommand(),
  },
  verify: {
    summary: 'are two face images the same person? (squared distance against the threshold)',
    load: async () => (await import('./commands/verify.js')).verifyCommand(),
  },
  identify: {
    summary: 'recognise faces by k-nearest neighbours in a labelled gallery (<dir>/<identity>/<image>)',
    load: async () => (await import('./commands/identify.js')).identifyCommand(),
  },
  cluster: {
    summary: 'group the faces under a folder by agglomerative clustering of their embeddings',
    load: async () => (await import('./commands/cluster.js')).clusterCommand(),
  },
  evaluate: {
    summary: 'LFW-protocol evaluation: N-fold accuracy, VAL@FAR, ROC',
    load: async () => (await import('./commands/evaluate.js')).evaluateCommand(),
  },
  data: {
    summary: 'datasets: download LFW, write the synthetic set, write a manifest, pack shards',
    load: async () => (await import('./commands/data.js')).dataCommand(),
  },
  models: { summary: 'list the model zoo with parameter counts', load: async () => (await import('./commands/models.js')).modelsCommand() },
  up: {
    summary: 'start a local cluster: Redis (if none answers), the coordinator, N workers, the miner and the evaluator',
    load: async () => (await import('./commands/up.js')).upCommand(),
  },
  jobs: {
    summary: 'launch, watch and steer jobs on a running cluster (facenet up)',
    load: async () => (await import('./commands/jobs.js')).jobsCommand(),
  },
  queues: {
    summary: "the cluster's team queues: quota, weight, ranks held and borrowed, jobs waiting (GET /v1/queues)",
    load: async () => (await import('./commands/queues.js')).queuesCommand(),
  },
  sweeps: {
    summary: 'search recipes: trials as jobs, losers stopped early by the evaluator’s scores (POST /v1/sweeps)',
    load: async () => (await import('./commands/sweeps.js')).sweepsCommand(),
  },
  export: {
    summary: 'write a checkpoint as an ONNX model or a TensorFlow.js graph model, for runtimes outside this project',
    load: async () => (await import('./commands/export.js')).exportCommand(),
  },
  serve: {
    summary: 'an HTTP embedding service for a checkpoint: POST /v1/embed, /v1/verify, /v1/identify (against a gallery folder)',
    load: async () => (await import('./commands/serve.js')).serveCommand(),
  },
};
