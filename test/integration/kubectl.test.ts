import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO } from '../helpers';

interface K8sObject {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: {
    selector?: { matchLabels?: Record<string, string> } & Record<string, string>;
    ports?: { port: number; targetPort?: number | string }[];
    template?: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
}
interface PodSpec {
  containers: { ports?: { containerPort: number; name?: string }[]; envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[] }[];
  volumes?: { configMap?: { name: string }; persistentVolumeClaim?: { claimName: string } }[];
}

const hasKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;

/** The overlays as `kubectl kustomize` renders them (default load restrictions), with their cross references checked. */
describe('Kubernetes manifests rendered by kubectl', function () {
  this.timeout(60000);
  before(function () {
    if (!hasKubectl) this.skip(); // kubectl is on this project's CI machines; elsewhere the test says it did not run
  });

  for (const overlay of ['local', 'gpu']) {
    it(`${overlay}: renders, and selectors, Service ports, ConfigMaps and PVCs all resolve`, () => {
      const out = execFileSync('kubectl', ['kustomize', join(REPO, 'deploy', 'k8s', 'overlays', overlay)], { encoding: 'utf8' });
      const objects = parseAllDocuments(out).map((d) => d.toJSON() as K8sObject);
      const named = (kind: string) => new Set(objects.filter((o) => o.kind === kind).map((o) => o.metadata.name));
      const configMaps = named('ConfigMap');
      const claims = named('PersistentVolumeClaim');
      const workloads = objects.filter((o) => o.spec?.template);
      assert.ok(workloads.length >= 4, `${workloads.length} workloads`);
      for (const w of workloads) {
        const pod = w.spec!.template!;
        for (const [k, v] of Object.entries(w.spec!.selector?.matchLabels ?? {})) assert.equal(pod.metadata.labels[k], v, `${w.metadata.name}: selector ${k}`);
        for (const c of pod.spec.containers) {
          for (const e of c.envFrom ?? []) if (e.configMapRef) assert.ok(configMaps.has(e.configMapRef.name), `${w.metadata.name}: ConfigMap ${e.configMapRef.name}`);
        }
        for (const v of pod.spec.volumes ?? []) {
          if (v.configMap) assert.ok(configMaps.has(v.configMap.name), `${w.metadata.name}: ConfigMap ${v.configMap.name}`);
          if (v.persistentVolumeClaim) assert.ok(claims.has(v.persistentVolumeClaim.claimName) || w.kind === 'StatefulSet', `${w.metadata.name}: PVC ${v.persistentVolumeClaim.claimName}`);
        }
      }
      for (const svc of objects.filter((o) => o.kind === 'Service')) {
        const sel = svc.spec?.selector ?? {};
        const target = workloads.find((w) => Object.entries(sel).every(([k, v]) => w.spec!.template!.metadata.labels[k] === v));
        assert.ok(target, `Service ${svc.metadata.name} selects no workload`);
        const ports = target.spec!.template!.spec.containers.flatMap((c) => c.ports ?? []);
        for (const p of svc.spec?.ports ?? []) {
          const t = p.targetPort ?? p.port;
          assert.ok(ports.some((cp) => cp.containerPort === t || cp.name === t), `Service ${svc.metadata.name} port ${t} is no container port of ${target.metadata.name}`);
        }
      }
    });
  }
});
