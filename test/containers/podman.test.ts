/**
 * The real images in real containers: podman builds the base (debootstrap, no registry), the
 * Redis stand-in and the project's image from deploy/docker/Dockerfile unchanged, runs the local
 * overlay's rendered manifests with `podman kube play` (one Pod per replica, see
 * deploy/podman/pods-from-manifests.ts for what that conversion does and leaves untested), and
 * drives a W=2 job through the coordinator's API to `completed`, the workers' ring running
 * between pods over mutual TLS by the DNS names the manifests use; the evaluator pod scores a
 * checkpoint. Run alone with `npm run test:containers`; needs root, podman, runc, debootstrap
 * (.ci/run installs them).
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { podsFromManifests, PodmanPod } from '../../deploy/podman/pods-from-manifests';
import { api, JobView, waitFor } from '../cluster-helpers';
import { ORL, REPO, tempDir } from '../helpers';
import { needTools } from '../requirements';

const exec = promisify(execFile);
const ENV = { ...process.env, CONTAINERS_CONF: join(REPO, 'deploy', 'podman', 'containers.conf') };
const NETWORK = 'facenet-ct';
const VOLUMES = ['facenet-dataset', 'facenet-checkpoints', 'facenet-reports', 'data-facenet-redis-0'];

async function run(
  cmd: string,
  args: string[],
  input?: { env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await exec(cmd, args, { cwd: REPO, env: input?.env ?? ENV, maxBuffer: 64 << 20, timeout: input?.timeoutMs ?? 600_000 });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.message}\n${(e.stderr ?? '').slice(-3000)}`);
  }
}
const podman = (...args: string[]) => run('podman', args);

async function teardown(pods: string[]): Promise<void> {
  for (const p of pods) await podman('pod', 'rm', '-f', '-t', '5', p).catch(() => undefined);
  for (const v of VOLUMES) await podman('volume', 'rm', '-f', v).catch(() => undefined);
  await podman('network', 'rm', '-f', NETWORK).catch(() => undefined);
}

async function ipOf(container: string): Promise<string> {
  const { stdout } = await podman('inspect', '--format', `{{(index .NetworkSettings.Networks "${NETWORK}").IPAddress}}`, container);
  return stdout.trim();
}

describe('containers: the local overlay on podman, a W=2 job across pods', function () {
  this.timeout(15 * 60_000);
  let t: ReturnType<typeof tempDir>;
  let pods: PodmanPod[] = [];
  let logsOnFailure = false;

  before(async function () {
    needTools(this, 'podman', 'runc', 'debootstrap', 'kubectl');
    t = tempDir('facenet-podman-');
    await teardown([
      'facenet-redis-0',
      'facenet-coordinator',
      'facenet-worker-0',
      'facenet-worker-1',
      'facenet-miner',
      'facenet-evaluator',
      'facenet-embed-0',
    ]);
    await run(join(REPO, 'deploy', 'podman', 'build-images.sh'), [], { timeoutMs: 12 * 60_000 });
  });

  after(async function () {
    if (logsOnFailure) {
      for (const p of pods) {
        const { stdout, stderr } = await podman('pod', 'logs', '--tail', '30', p.name).catch((e: Error) => ({
          stdout: e.message,
          stderr: '',
        }));
        console.log(`--- ${p.name}\n${stdout}${stderr}`);
      }
    }
    if (process.env.FACENET_KEEP_PODS === '1') return; // to look at them: podman pod ps, podman logs <pod>-<container>
    await teardown(pods.map((p) => p.name));
    t?.cleanup();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed') logsOnFailure = true;
  });

  it('renders, plays every pod, and trains a W=2 job to completed through the coordinator API', async () => {
    const manifests = (await run('kubectl', ['kustomize', 'deploy/k8s/overlays/local'])).stdout;
    const made = await run(join(REPO, 'deploy', 'k8s', 'make-secrets.sh'), ['default'], { env: { ...ENV, DRY_RUN: '1' } });
    const admin = /admin ([0-9a-f]+)/.exec(made.stderr)?.[1];
    assert.ok(admin, 'make-secrets.sh printed an admin token');
    pods = podsFromManifests({
      manifests,
      secrets: made.stdout,
      filesDir: join(t.dir, 'files'),
      images: { facenet: 'localhost/facenet:latest', redis: 'localhost/facenet-redis:debian' },
    });
    assert.deepEqual(pods.map((p) => p.name).sort(), [
      'facenet-coordinator',
      'facenet-evaluator',
      'facenet-miner',
      'facenet-redis-0',
      'facenet-worker-0',
      'facenet-worker-1',
    ]);

    // The dataset volume holds ORL at /data/orl, as a cluster's dataset PVC would.
    await podman('network', 'create', NETWORK);
    await podman('volume', 'create', 'facenet-dataset');
    const tar = join(t.dir, 'orl.tar');
    await run('tar', ['-C', ORL, '--transform', 's,^\\.,orl,', '--owner=0', '--group=0', '--mode=a+rX', '-cf', tar, '.']);
    await podman('volume', 'import', 'facenet-dataset', tar);

    mkdirSync(join(t.dir, 'pods'), { recursive: true });
    const order = ['facenet-redis-0', 'facenet-coordinator', 'facenet-worker-0', 'facenet-worker-1', 'facenet-miner', 'facenet-evaluator'];
    for (const name of order) {
      const pod = pods.find((p) => p.name === name) as PodmanPod;
      const file = join(t.dir, 'pods', `${name}.yaml`);
      writeFileSync(file, pod.yaml);
      await podman('kube', 'play', '--network', `${NETWORK}:${pod.aliases.map((a) => `alias=${a}`).join(',')}`, file);
    }

    const url = `http://${await ipOf('facenet-coordinator-coordinator')}:8080`;
    await waitFor(
      async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.ok === true,
      120_000,
      'the coordinator pod to answer /healthz',
    );
    await assert.rejects(api(url, 'GET', '/v1/jobs'), /HTTP 401/, 'the API wants the token from the Secret');
    // Redis wants the Secret's password, and the container's command line does not carry it (the
    // runtime's config, `podman inspect`/`crictl inspect`, shows a container's expanded arguments).
    assert.match((await podman('exec', 'facenet-redis-0-redis', 'redis-cli', 'ping')).stdout, /NOAUTH/);
    const password = (await podman('exec', 'facenet-redis-0-redis', 'printenv', 'REDIS_PASSWORD')).stdout.trim();
    assert.ok(password.length >= 16, 'the Secret gave Redis a password');
    const config = (
      await podman('inspect', '--format', '{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Args}}', 'facenet-redis-0-redis')
    ).stdout;
    assert.ok(!config.includes(password), `the password is in the container's arguments: ${config.slice(0, 200)}`);

    const spec = {
      dataset: { kind: 'folder', path: '/data/orl' },
      holdout: 10,
      worldSize: 2,
      checksumEvery: 2,
      train: { model: { architecture: 'tiny', imageSize: 32 }, batch: { P: 8, K: 4 }, virtualShards: 2, steps: 6, checkpointEvery: 3 },
    };
    const job = await api<JobView>(url, 'POST', '/v1/jobs', spec, admin);
    let view: JobView | undefined;
    await waitFor(
      async () => {
        view = await api<JobView>(url, 'GET', `/v1/jobs/${job.id}`, undefined, admin);
        if (view.state === 'failed') throw new Error(`job failed: ${view.error}`);
        return view.state === 'completed';
      },
      8 * 60_000,
      'the job to complete in the containers',
    );
    const done = view as JobView;
    assert.equal(done.world.size, 2);
    assert.equal(done.step, 6);
    // The ring ran between the two worker pods, by the headless Service's names, over mutual TLS (the manifests set FACENET_TLS_*).
    const workers = await api<{ address: string }[]>(url, 'GET', '/v1/workers', undefined, admin);
    assert.deepEqual(workers.map((w) => w.address).sort(), [
      'facenet-worker-0.facenet-worker.default.svc:50051',
      'facenet-worker-1.facenet-worker.default.svc:50051',
    ]);
    // Checkpoints landed on the shared volume, and the evaluator pod scored one.
    const ckpts = await api<{ step: number }[]>(url, 'GET', `/v1/jobs/${job.id}/checkpoints`, undefined, admin);
    assert.deepEqual(
      ckpts.map((c) => c.step).sort((a, b) => a - b),
      [3, 6],
    );
    let evals: { step: number; report?: string }[] = [];
    await waitFor(
      async () =>
        (evals = await api<{ step: number; report?: string }[]>(url, 'GET', `/v1/jobs/${job.id}/evaluations`, undefined, admin)).length > 0,
      180_000,
      'the evaluator pod to score a checkpoint',
    );
    // Its report, written on the evaluator pod's reports volume, is served by the coordinator pod.
    assert.ok(evals[0]!.report, 'the evaluation names its report');
    const res = await fetch(`${url}/v1/jobs/${job.id}/evaluations/${evals[0]!.step}/report`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(res.status, 200, await res.clone().text());
    assert.match(await res.text(), /<svg id="roc"/);

    // The embedding-service overlay's pod serves this job's best checkpoint from the checkpoint volume.
    const serving = (await run('kubectl', ['kustomize', 'deploy/k8s/overlays/embedding-service'])).stdout.replace(
      /FACENET_SERVE_JOB: \S+/,
      `FACENET_SERVE_JOB: ${job.id}`,
    );
    const embed = podsFromManifests({
      manifests: serving,
      secrets: made.stdout,
      filesDir: join(t.dir, 'files-embed'),
      images: { facenet: 'localhost/facenet:latest', redis: 'localhost/facenet-redis:debian' },
    }).find((p) => p.name === 'facenet-embed-0') as PodmanPod;
    assert.ok(embed, 'the overlay renders the facenet-embed Deployment');
    pods.push(embed);
    const embedFile = join(t.dir, 'pods', 'facenet-embed-0.yaml');
    writeFileSync(embedFile, embed.yaml);
    await podman('kube', 'play', '--network', `${NETWORK}:${embed.aliases.map((a) => `alias=${a}`).join(',')}`, embedFile);
    const embedUrl = `http://${await ipOf('facenet-embed-0-embed')}:8090`;
    let health: { checkpoint?: { step: number } } = {};
    await waitFor(
      async () => {
        const r = await fetch(`${embedUrl}/healthz`).catch(() => undefined);
        if (r?.ok) health = (await r.json()) as typeof health;
        return r?.ok === true;
      },
      120_000,
      'the embedding pod to answer /healthz',
    );
    assert.ok([3, 6].includes(health.checkpoint!.step), JSON.stringify(health));
    const face = readFileSync(join(ORL, 's1', '1.pgm')).toString('base64');
    const post = (token?: string) =>
      fetch(`${embedUrl}/v1/embed`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ images: [face] }),
      });
    assert.equal((await post()).status, 401, 'the service wants a token from the same Secret');
    const embedded = await post(admin);
    assert.equal(embedded.status, 200, await embedded.clone().text());
    const e = ((await embedded.json()) as { embeddings: number[][] }).embeddings[0]!;
    assert.equal(e.length, 128);
    assert.ok(Math.abs(Math.hypot(...e) - 1) < 1e-4, 'a unit-length embedding');
  });
});
