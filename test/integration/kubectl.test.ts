import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO } from '../helpers';
import { needTools } from '../requirements';

type Labels = Record<string, string>;
interface Probe {
  httpGet?: { path: string; port: number | string };
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Labels };
  spec?: {
    selector?: { matchLabels?: Labels; matchExpressions?: { key: string; operator: string; values: string[] }[] } & Labels;
    podSelector?: Selector;
    policyTypes?: string[];
    ingress?: { from?: { podSelector?: Selector; namespaceSelector?: Selector }[]; ports?: { port: number }[] }[];
    egress?: { to?: { podSelector?: Selector }[]; ports?: { port: number }[] }[];
    ports?: { port: number; targetPort?: number | string }[];
    endpoints?: { port: string }[];
    podMetricsEndpoints?: { port: string }[];
    template?: { metadata: { labels: Labels }; spec: PodSpec };
  };
}
interface Selector {
  matchLabels?: Labels;
  matchExpressions?: { key: string; operator: string; values: string[] }[];
}
interface Container {
  name: string;
  image?: string;
  securityContext?: { readOnlyRootFilesystem?: boolean };
  ports?: { containerPort: number; name?: string }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Labels; limits?: Labels };
}
interface PodSpec {
  containers: Container[];
  securityContext?: { runAsNonRoot?: boolean; seccompProfile?: { type: string } };
  automountServiceAccountToken?: boolean;
  volumes?: { configMap?: { name: string }; persistentVolumeClaim?: { claimName: string } }[];
}

const matches = (labels: Labels, selector: Labels = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);
/** A label selector with matchLabels and `In` expressions, as NetworkPolicies use them. */
const selects = (labels: Labels, s: Selector = {}) =>
  matches(labels, s.matchLabels) &&
  (s.matchExpressions ?? []).every((e) => e.operator === 'In' && e.values.includes(labels[e.key] as string));

/**
 * Validates an object against the Kubernetes API's JSON schema (kubernetes-models, offline), or
 * the Prometheus operator's for monitoring.coreos.com; throws naming the field.
 */
async function validateSchema(o: K8sObject): Promise<void> {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  const modulePath =
    group === 'monitoring.coreos.com'
      ? `@kubernetes-models/prometheus-operator/${group}/${version}/${o.kind}`
      : `kubernetes-models/${group ? `${group}/` : ''}${version}/${o.kind}`;
  const mod = (await import(modulePath)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = mod[o.kind];
  assert.ok(Model, `no schema for ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

/** The overlays as `kubectl kustomize` renders them (default load restrictions), with their cross references checked. */
describe('Kubernetes manifests rendered by kubectl', function () {
  this.timeout(60000);
  let secretYaml = '';
  before(function () {
    needTools(this, 'kubectl');
    secretYaml = execFileSync(join(REPO, 'deploy', 'k8s', 'make-secrets.sh'), ['facenet-test'], {
      encoding: 'utf8',
      env: { ...process.env, DRY_RUN: '1' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  });

  for (const overlay of ['local', 'gpu', 'object-storage', 'embedding-service']) {
    it(`${overlay}: renders, validates against the Kubernetes schemas, and selectors, ports, probes, ConfigMaps, PVCs and NetworkPolicies all resolve`, async () => {
      const out = execFileSync('kubectl', ['kustomize', join(REPO, 'deploy', 'k8s', 'overlays', overlay)], { encoding: 'utf8' });
      const objects = parseAllDocuments(out).map((d) => d.toJSON() as K8sObject);
      const named = (kind: string) => new Set(objects.filter((o) => o.kind === kind).map((o) => o.metadata.name));
      const configMaps = named('ConfigMap');
      const claims = named('PersistentVolumeClaim');
      const workloads = objects.filter((o) => o.spec?.template);
      assert.ok(workloads.length >= 5, `${workloads.length} workloads`);
      for (const o of objects) {
        try {
          await validateSchema(o);
        } catch (err) {
          assert.fail(`${o.kind} ${o.metadata.name} does not validate against its schema: ${(err as Error).message}`);
        }
      }
      for (const w of workloads) {
        const pod = w.spec!.template!.spec;
        assert.equal(pod.securityContext?.runAsNonRoot, true, `${w.metadata.name}: runs as non-root`);
        // Hardened: no service-account token, the runtime's seccomp profile, a read-only root, pinned images.
        assert.equal(pod.automountServiceAccountToken, false, `${w.metadata.name}: no service-account token mounted`);
        assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${w.metadata.name}: seccomp RuntimeDefault`);
        for (const c of pod.containers) {
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${w.metadata.name}/${c.name}: read-only root filesystem`);
          assert.match(String(c.image), /:(?!latest$)[\w.-]+$/, `${w.metadata.name}/${c.name}: image ${c.image} has a pinned tag`);
        }
        for (const c of pod.containers) {
          assert.ok(
            c.resources?.requests && c.resources.limits?.memory,
            `${w.metadata.name}/${c.name}: resource requests and a memory limit`,
          );
          if (w.metadata.name === 'facenet-redis') continue;
          for (const probe of [c.readinessProbe, c.livenessProbe]) {
            const port = probe?.httpGet?.port;
            assert.ok(port !== undefined, `${w.metadata.name}/${c.name}: readiness and liveness probes on HTTP`);
            assert.ok(
              (c.ports ?? []).some((p) => p.containerPort === port || p.name === port),
              `${w.metadata.name}/${c.name}: probe port ${port} is a container port`,
            );
          }
        }
      }
      const podLabels = workloads.map((w) => w.spec!.template!.metadata.labels);
      const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
      for (const np of policies) {
        assert.ok(
          podLabels.some((l) => selects(l, np.spec?.podSelector)),
          `NetworkPolicy ${np.metadata.name} selects no pod`,
        );
        for (const peer of [
          ...(np.spec?.ingress ?? []).flatMap((r) => r.from ?? []),
          ...(np.spec?.egress ?? []).flatMap((r) => r.to ?? []),
        ]) {
          if (peer.podSelector)
            assert.ok(
              podLabels.some((l) => selects(l, peer.podSelector)),
              `NetworkPolicy ${np.metadata.name} names no pod`,
            );
        }
      }
      // Metrics ports (9464) admit the monitoring namespace only, never every namespace.
      for (const np of policies)
        for (const rule of np.spec?.ingress ?? [])
          for (const peer of rule.from ?? [])
            if (peer.namespaceSelector)
              assert.deepEqual(
                peer.namespaceSelector,
                { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
                `NetworkPolicy ${np.metadata.name} admits namespaces beyond monitoring`,
              );
      // Default deny: one policy with no rules selects every project pod, for ingress and egress.
      const deny = policies.find((p) => !p.spec?.ingress && !p.spec?.egress && (p.spec?.policyTypes ?? []).length === 2);
      assert.ok(deny, 'a default-deny NetworkPolicy');
      for (const l of podLabels) assert.ok(selects(l, deny.spec?.podSelector), `default deny covers ${l.app}`);
      // Redis: exactly the four services may reach it, by component, not by the part-of label any pod may carry.
      const redisPolicy = policies.find((o) => o.metadata.name === 'facenet-redis');
      const allowed = podLabels.filter((l) => selects(l, redisPolicy?.spec?.ingress?.[0]?.from?.[0]?.podSelector)).map((l) => l.app);
      assert.deepEqual(allowed.sort(), ['facenet-coordinator', 'facenet-evaluator', 'facenet-miner', 'facenet-worker']);
      assert.ok(
        !selects({ 'app.kubernetes.io/part-of': 'facenet', app: 'intruder' }, redisPolicy?.spec?.ingress?.[0]?.from?.[0]?.podSelector),
      );
      for (const sm of objects.filter((o) => o.kind === 'ServiceMonitor')) {
        const svc = objects.find((o) => o.kind === 'Service' && matches(o.metadata.labels ?? {}, sm.spec?.selector?.matchLabels));
        assert.ok(svc, `ServiceMonitor ${sm.metadata.name} selects no Service`);
        for (const e of sm.spec?.endpoints ?? [])
          assert.ok(
            (svc.spec?.ports ?? []).some((p) => (p as { name?: string }).name === e.port),
            `ServiceMonitor ${sm.metadata.name}: no port ${e.port}`,
          );
      }
      for (const pm of objects.filter((o) => o.kind === 'PodMonitor')) {
        const apps = pm.spec?.selector?.matchExpressions?.[0]?.values ?? [];
        for (const app of apps) {
          const w = workloads.find((x) => x.spec!.template!.metadata.labels.app === app);
          assert.ok(w, `PodMonitor ${pm.metadata.name}: no workload ${app}`);
          for (const e of pm.spec?.podMetricsEndpoints ?? [])
            assert.ok(
              w.spec!.template!.spec.containers.some((c) => (c.ports ?? []).some((p) => p.name === e.port)),
              `${app} has no port named ${e.port}`,
            );
        }
      }
      // Secrets are the operator's (deploy/k8s/make-secrets.sh): every reference must name one of its keys.
      const secret = parseAllDocuments(secretYaml)[0]!.toJSON() as K8sObject & { data: Record<string, string> };
      await validateSchema(secret);
      const secretRefs = objects.flatMap(
        (o) => JSON.stringify(o).match(/"secretKeyRef":\{[^}]*\}|"secret":\{"items":\[[^\]]*\],"secretName":"[^"]*"\}/g) ?? [],
      );
      assert.ok(secretRefs.length >= 6, `${secretRefs.length} secret references`);
      // The storage Secret is the operator's too, made by the command the object-storage component documents.
      const storageKeys = /--from-literal=([a-z-]+)=\.\.\. --from-literal=([a-z-]+)=/.exec(
        readFileSync(join(REPO, 'deploy', 'k8s', 'components', 'object-storage', 'kustomization.yaml'), 'utf8').replace(/\\\n#\s+/g, ''),
      );
      for (const ref of secretRefs) {
        const storage = /"name":"facenet-s3"/.test(ref);
        if (!storage) assert.match(ref, /facenet-secrets/, ref);
        for (const key of [...ref.matchAll(/"key":"([^"]+)"/g)].map((m) => m[1]!))
          assert.ok(storage ? storageKeys?.slice(1).includes(key) : key in secret.data, `no documented Secret provides key ${key}`);
      }
      assert.ok(
        configMaps.has('facenet-prometheus-rules') || [...configMaps].some((n) => n.startsWith('facenet-prometheus-rules-')),
        'alert rules ConfigMap',
      );
      for (const w of workloads) {
        const pod = w.spec!.template!;
        for (const [k, v] of Object.entries(w.spec!.selector?.matchLabels ?? {}))
          assert.equal(pod.metadata.labels[k], v, `${w.metadata.name}: selector ${k}`);
        for (const c of pod.spec.containers) {
          for (const e of c.envFrom ?? [])
            if (e.configMapRef) assert.ok(configMaps.has(e.configMapRef.name), `${w.metadata.name}: ConfigMap ${e.configMapRef.name}`);
        }
        for (const v of pod.spec.volumes ?? []) {
          if (v.configMap) assert.ok(configMaps.has(v.configMap.name), `${w.metadata.name}: ConfigMap ${v.configMap.name}`);
          if (v.persistentVolumeClaim)
            assert.ok(
              claims.has(v.persistentVolumeClaim.claimName) || w.kind === 'StatefulSet',
              `${w.metadata.name}: PVC ${v.persistentVolumeClaim.claimName}`,
            );
        }
      }
      for (const svc of objects.filter((o) => o.kind === 'Service')) {
        const sel = svc.spec?.selector ?? {};
        const target = workloads.find((w) => Object.entries(sel).every(([k, v]) => w.spec!.template!.metadata.labels[k] === v));
        assert.ok(target, `Service ${svc.metadata.name} selects no workload`);
        const ports = target.spec!.template!.spec.containers.flatMap((c) => c.ports ?? []);
        for (const p of svc.spec?.ports ?? []) {
          const t = p.targetPort ?? p.port;
          assert.ok(
            ports.some((cp) => cp.containerPort === t || cp.name === t),
            `Service ${svc.metadata.name} port ${t} is no container port of ${target.metadata.name}`,
          );
        }
      }
    });
  }
});
