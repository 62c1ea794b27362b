import { strict as assert } from 'node:assert';
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EvaluationRecord, WorkerInfo } from '@facenet/protocol';
import { api, JobView, startCluster, TestCluster, waitFor, waitForState } from '../cluster-helpers';
import { ORL, REPO, tempDir, freePort } from '../helpers';
import { needTools } from '../requirements';

const MONITORING = join(REPO, 'deploy', 'k8s', 'base', 'monitoring');

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe('metrics of every service, scraped by a real Prometheus (Debian prometheus 2.42)', function () {
  this.timeout(300000);
  let t: ReturnType<typeof tempDir>;
  let cluster: TestCluster;
  let prometheus: ChildProcess | undefined;
  let prom = '';
  const promLog: string[] = [];

  before(function () {
    needTools(this, 'prometheus', 'promtool');
  });
  after(async () => {
    prometheus?.kill('SIGTERM');
    await cluster?.stop();
    t?.cleanup();
  });

  async function query(expr: string): Promise<Sample[]> {
    const res = await fetch(`${prom}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data: { result: Sample[] } };
    assert.equal(body.status, 'success', `${expr}: ${body.error}`);
    return body.data.result;
  }

  it('alert rules pass promtool check and their unit tests', () => {
    execFileSync('promtool', ['check', 'rules', join(MONITORING, 'alerts.yml')], { stdio: 'pipe' });
    const out = execFileSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: MONITORING, encoding: 'utf8' });
    assert.match(out, /SUCCESS/);
  });

  it('scrapes coordinator, workers, miner and evaluator; the training job is job_id; every dashboard query runs', async () => {
    t = tempDir('facenet-prometheus-');
    cluster = await startCluster(2, join(t.dir, 'ckpt'));
    await waitFor(
      async () =>
        (await api<unknown>(cluster.url, 'GET', '/v1/miner')) !== null &&
        (await api<unknown>(cluster.url, 'GET', '/v1/evaluator')) !== null,
      30000,
      'the miner and the evaluator',
    );
    const workers = await api<WorkerInfo[]>(cluster.url, 'GET', '/v1/workers');
    const miner = await api<{ metrics: string }>(cluster.url, 'GET', '/v1/miner');
    const evaluator = await api<{ metrics: string }>(cluster.url, 'GET', '/v1/evaluator');
    const targets: Record<string, string[]> = {
      'facenet-coordinator': [new URL(cluster.url).host],
      'facenet-worker': workers.map((w) => w.metrics!),
      'facenet-miner': [miner.metrics],
      'facenet-evaluator': [evaluator.metrics],
    };
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [join(MONITORING, 'alerts.yml')],
      scrape_configs: Object.entries(targets).map(([job, list]) => ({ job_name: job, static_configs: [{ targets: list }] })),
    };
    writeFileSync(join(t.dir, 'prometheus.yml'), JSON.stringify(config)); // YAML is a superset of JSON
    const port = await freePort();
    prom = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(t.dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(t.dir, 'tsdb')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    prometheus.stderr!.on('data', (d: Buffer) => promLog.push(d.toString()));
    await waitFor(
      async () =>
        fetch(`${prom}/-/ready`).then(
          (r) => r.ok,
          () => false,
        ),
      30000,
      'Prometheus to be ready',
    );

    const spec = {
      dataset: { kind: 'folder', path: ORL },
      holdout: 10,
      worldSize: 2,
      train: {
        model: { architecture: 'tiny', imageSize: 32 },
        batch: { P: 8, K: 5 },
        virtualShards: 2,
        steps: 24,
        checkpointEvery: 6,
        seed: 3,
      },
      curriculum: { enabled: true, startStep: 0, rampSteps: 1, finalFraction: 0.5, samplePerIdentity: 6 },
    };
    const job = await api<JobView>(cluster.url, 'POST', '/v1/jobs', spec);
    await waitForState(cluster.url, job.id, ['completed'], 180000);
    await waitFor(
      async () => (await api<EvaluationRecord[]>(cluster.url, 'GET', `/v1/jobs/${job.id}/evaluations`)).some((e) => e.step === 24),
      120000,
      'the last evaluation',
    );
    // The miner works off the training path and may publish after the job ends: the mining panels need its plan.
    await waitFor(async () => (await api<unknown>(cluster.url, 'GET', `/v1/jobs/${job.id}/plan`)) !== null, 120000, 'a mining plan');
    // Three scrapes after the last evaluation and the plan.
    await new Promise((r) => setTimeout(r, 3500));

    const up = await query('up');
    assert.equal(up.length, 5, JSON.stringify(up.map((s) => s.metric)));
    for (const s of up) assert.equal(s.value[1], '1', `${s.metric.job} ${s.metric.instance} is down`);

    const loss = await query(`facenet_job_loss{job_id="${job.id}"}`);
    assert.equal(loss.length, 1);
    assert.equal(loss[0]!.metric.job, 'facenet-coordinator', "Prometheus's job label is the scrape target");
    assert.equal(loss[0]!.metric.exported_job, undefined, 'no metric carries a label `job` of its own');
    const val = await query(`facenet_evaluation_val{job_id="${job.id}"}`);
    assert.equal(val.length, 1);
    assert.equal(val[0]!.metric.job, 'facenet-evaluator');
    const last = (await api<EvaluationRecord[]>(cluster.url, 'GET', `/v1/jobs/${job.id}/evaluations`)).at(-1)!;
    assert.equal(Number(val[0]!.value[1]), last.val);
    const phases = await query(`sum by (phase) (facenet_worker_step_phase_seconds_count{job_id="${job.id}"})`);
    assert.deepEqual(phases.map((s) => s.metric.phase).sort(), ['allreduce', 'checkpoint', 'compute', 'data', 'optimizer']);
    for (const s of phases) assert.equal(Number(s.value[1]), 2 * 24, `${s.metric.phase}: one observation per rank and step`);

    // Every expression of the dashboard, with the job_id variable set to this job.
    const dash = JSON.parse(readFileSync(join(MONITORING, 'facenet-dashboard.json'), 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    // Faults, non-finite rollbacks and checkpoint age (running jobs only) have nothing to show after a clean, finished job;
    // preemptions and sweeps nothing on a pool with one job and no sweep (the sweep panels are tested by their gauges in unit tests).
    const mayBeEmpty = /faults_total|non_finite_rollbacks_total|checkpoint_age_seconds|queue_preemptions_total|facenet_sweep_/;
    const emptyPanels = async () => {
      const empty: string[] = [];
      for (const p of dash.panels) {
        for (const target of p.targets ?? []) {
          const result = await query(target.expr.replaceAll('$job_id', job.id));
          if (result.length === 0) empty.push(`${p.title}: ${target.expr}`);
        }
      }
      return empty.filter((e) => !mayBeEmpty.test(e));
    };
    // A rate() needs two scrapes of a series: one that appeared at the last evaluation or plan may
    // not have them yet on a loaded machine, so give Prometheus up to 30 s more before judging.
    let empty = await emptyPanels();
    for (const until = Date.now() + 30000; empty.length > 0 && Date.now() < until;) {
      await new Promise((r) => setTimeout(r, 1000));
      empty = await emptyPanels();
    }
    assert.deepEqual(empty, [], 'dashboard panels without data');

    const rules = (await (await fetch(`${prom}/api/v1/rules`)).json()) as {
      data: { groups: { name: string; rules: { health: string; name: string }[] }[] };
    };
    const loaded = rules.data.groups.flatMap((g) => g.rules);
    assert.ok(loaded.length >= 9, `${loaded.length} rules loaded`);
    for (const r of loaded) assert.equal(r.health, 'ok', `rule ${r.name} evaluates`);
  });
});
