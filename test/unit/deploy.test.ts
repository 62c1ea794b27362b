import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { createMetrics } from '@facenet/coordinator';
import { createEvaluatorMetrics } from '@facenet/evaluator';
import { createMinerMetrics } from '@facenet/miner';
import { createWorkerMetrics } from '@facenet/worker';

/** Every service's registry, as each serves it at /metrics. */
const registries = () => [
  createMetrics().registry,
  createWorkerMetrics().registry,
  createMinerMetrics().registry,
  createEvaluatorMetrics().registry,
];
import { REPO } from '../helpers';

const K8S = join(REPO, 'deploy', 'k8s');

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : [],
  );
}

/** Environment variables a service entry point reads (process.env.X or envNumber('X')). */
function envRead(): Set<string> {
  const names = new Set<string>();
  for (const pkg of ['coordinator', 'worker', 'miner', 'evaluator', 'protocol', 'facenet', 'service-kit']) {
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.ts') ? [join(d, e.name)] : [],
      );
    for (const f of walk(join(REPO, 'packages', pkg, 'src'))) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(?:process\.)?env\.([A-Z_]+)|envNumber\('([A-Z_]+)'\)/g)) names.add((m[1] ?? m[2]) as string);
    }
  }
  return names;
}

describe('deployment manifests', () => {
  it('parse, and every kustomization references files that exist', () => {
    for (const f of yamlFiles(K8S)) {
      const docs = parseAllDocuments(readFileSync(f, 'utf8'));
      for (const d of docs) assert.deepEqual(d.errors, [], `${f}: ${d.errors.join('; ')}`);
      if (f.endsWith('kustomization.yaml')) {
        const k = docs[0]!.toJS() as { resources?: string[]; configMapGenerator?: { files?: string[] }[] };
        for (const r of k.resources ?? []) assert.ok(existsSync(join(dirname(f), r)), `${f}: resource ${r}`);
        for (const g of k.configMapGenerator ?? [])
          for (const file of g.files ?? []) assert.ok(existsSync(join(dirname(f), file.split('=').pop()!)), `${f}: ${file}`);
      }
    }
  });

  it('set only environment variables the services read', () => {
    // Variables the manifests themselves use ($(POD_NAME), $(REDIS_PASSWORD)) count as read.
    // NVIDIA_DRIVER_CAPABILITIES is read by the NVIDIA container runtime, not by a service: with
    // `graphics` it mounts the Vulkan driver the webgpu backend needs (docs/gpu.md).
    const known = new Set([...envRead(), 'NVIDIA_DRIVER_CAPABILITIES']);
    const set: string[] = [];
    for (const f of yamlFiles(K8S)) for (const m of readFileSync(f, 'utf8').matchAll(/\$\(([A-Z][A-Z_]+)\)/g)) known.add(m[1]!);
    for (const f of yamlFiles(K8S)) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/name: ([A-Z][A-Z_]+)\b/g)) set.push(m[1]!);
      for (const m of text.matchAll(/^\s+- ([A-Z][A-Z_]+)=/gm)) set.push(m[1]!);
    }
    assert.ok(set.length >= 8);
    for (const name of set) assert.ok(known.has(name), `${name} is set in deploy/k8s but no service reads it`);
  });

  it('put no secret on a command line (arguments are readable by anyone on the node: ps, /proc/<pid>/cmdline)', () => {
    let containers = 0;
    for (const f of yamlFiles(K8S)) {
      for (const doc of parseAllDocuments(readFileSync(f, 'utf8'))) {
        const spec = doc.toJS() as { spec?: { template?: { spec?: { containers?: unknown[] } } } } | null;
        for (const c of (spec?.spec?.template?.spec?.containers ?? []) as {
          name: string;
          env?: { name: string; valueFrom?: { secretKeyRef?: unknown } }[];
          command?: string[];
          args?: string[];
        }[]) {
          containers++;
          const secrets = (c.env ?? []).filter((e) => e.valueFrom?.secretKeyRef).map((e) => e.name);
          for (const arg of [...(c.command ?? []), ...(c.args ?? [])])
            for (const name of secrets) assert.ok(!arg.includes(`$(${name})`), `${f}: ${c.name} passes ${name} as an argument`);
        }
      }
    }
    assert.ok(containers >= 5, `${containers} containers checked`);
  });

  it('the dashboard queries only metrics some service exports', async () => {
    const dash = JSON.parse(readFileSync(join(K8S, 'base', 'monitoring', 'facenet-dashboard.json'), 'utf8')) as {
      panels: { targets?: { expr: string }[] }[];
    };
    const exported = new Set((await Promise.all(registries().map((r) => r.getMetricsAsJSON()))).flat().map((m) => m.name));
    const queried = dash.panels.flatMap((p) =>
      (p.targets ?? []).flatMap((t) => [...t.expr.matchAll(/facenet_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''))),
    );
    assert.ok(queried.length >= 20);
    for (const q of queried) assert.ok(exported.has(q), `dashboard queries ${q}, which no service exports`);
    for (const q of [
      'facenet_evaluation_val',
      'facenet_evaluation_accuracy',
      'facenet_worker_step_phase_seconds',
      'facenet_queue_jobs',
      'facenet_mining_seconds',
      'facenet_worker_nodejs_eventloop_lag_p99_seconds',
      'facenet_coordinator_nodejs_eventloop_lag_p99_seconds',
      'facenet_queue_running_ranks',
      'facenet_queue_preemptions_total',
      'facenet_scheduler_decision_seconds',
      'facenet_sweep_trials',
      'facenet_sweep_best_score',
    ])
      assert.ok(queried.includes(q), `no panel shows ${q}`);
  });

  it('no metric labels the training job `job` or `instance` (Prometheus owns them: the job is `job_id`), nor does the dashboard group by them', async () => {
    const m = createMetrics();
    m.loss.set({ job_id: 'j1' }, 0.1);
    m.phase.observe({ job_id: 'j1', phase: 'compute' }, 0.5);
    const w = createWorkerMetrics();
    w.phase.observe({ job_id: 'j1', phase: 'compute' }, 0.5);
    w.info.set({ worker_id: 'w1', backend: 'wasm' }, 1);
    const e = createEvaluatorMetrics();
    e.val.set({ job_id: 'j1' }, 0.5);
    const n = createMinerMetrics();
    n.planVersion.set({ job_id: 'j1' }, 1);
    for (const registry of [m.registry, w.registry, e.registry, n.registry]) {
      for (const metric of await registry.getMetricsAsJSON()) {
        for (const v of metric.values ?? [])
          for (const label of Object.keys(v.labels ?? {}))
            assert.ok(!['job', 'instance'].includes(label), `${metric.name} has label ${label}`);
      }
    }
    const dash = readFileSync(join(K8S, 'base', 'monitoring', 'facenet-dashboard.json'), 'utf8');
    assert.doesNotMatch(dash, /by \((?:[a-z_]+, )*job[,)]|\{\{job\}\}/);
  });
});
