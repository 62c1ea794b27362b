/**
 * Turns rendered Kubernetes manifests (`kubectl kustomize deploy/k8s/overlays/local`) into Pods
 * that `podman kube play` runs, doing the few things a kubelet and the controllers would:
 *   - each Deployment and StatefulSet replica becomes a Pod (StatefulSet replicas are named
 *     <set>-<i> and get their volumeClaimTemplates as <template>-<set>-<i> volumes): kube play
 *     silently drops StatefulSets;
 *   - env is resolved to literal values: envFrom ConfigMaps, Secret and ConfigMap keys, the pod's
 *     own name (fieldRef metadata.name), then $(VAR) references in env, command and args, which
 *     podman leaves unexpanded;
 *   - Secret and ConfigMap volumes become host folders holding their keys as files;
 *   - containerPorts are dropped (podman 4.3 publishes each on the host; pods reach each other
 *     on the network without them), and so are probes: podman would turn them into healthchecks that nothing runs here (no
 *     systemd), and the caller polls the same endpoints instead;
 *   - Services become DNS aliases on the podman network, so a name resolves as in the cluster:
 *     `<svc>` for every Service selecting the pod, and `<pod>.<svc>` too for the pods of a
 *     StatefulSet governed by a headless Service.
 *     kube play drops Services and NetworkPolicies; their load balancing and policy are untested.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects, walked by field name */
type Obj = Record<string, any>;

export interface PodmanPod {
  name: string;
  /** DNS names the pod answers to on the network (podman kube play --network NET:alias=...). */
  aliases: string[];
  /** The Pod manifest for kube play. */
  yaml: string;
}

export interface ConvertOptions {
  /** Rendered manifests (multi-document YAML). */
  manifests: string;
  /** Secrets the manifests reference (multi-document YAML, e.g. make-secrets.sh with DRY_RUN=1). */
  secrets: string;
  /** Where Secret and ConfigMap volumes are written as files. */
  filesDir: string;
  /** Image name (without tag) -> image to run, e.g. { facenet: 'localhost/facenet:latest' }. */
  images: Record<string, string>;
}

const docs = (text: string): Obj[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Obj)
    .filter(Boolean);
const matches = (selector: Obj | undefined, labels: Obj | undefined) =>
  !!selector && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** Replaces $(NAME) with the value of an env var defined before; $$(NAME) escapes, as in Kubernetes. */
function expand(text: string, env: Map<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name: string | undefined) =>
    m === '$$' ? '$' : (env.get(name as string) ?? m),
  );
}

export function podsFromManifests(o: ConvertOptions): PodmanPod[] {
  const all = [...docs(o.manifests), ...docs(o.secrets)];
  const byKind = (kind: string) => all.filter((d) => d.kind === kind);
  const configMaps = new Map<string, Record<string, string>>(byKind('ConfigMap').map((c) => [c.metadata.name, c.data ?? {}]));
  const secrets = new Map<string, Record<string, string>>(
    byKind('Secret').map((s) => [
      s.metadata.name,
      {
        ...Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), 'base64').toString('utf8')])),
        ...(s.stringData ?? {}),
      },
    ]),
  );
  const lookup = (kind: 'Secret' | 'ConfigMap', name: string, key?: string): Record<string, string> | string => {
    const data = (kind === 'Secret' ? secrets : configMaps).get(name);
    if (!data) throw new Error(`${kind} ${name} is referenced but not defined`);
    if (key === undefined) return data;
    if (!(key in data)) throw new Error(`${kind} ${name} has no key ${key}`);
    return data[key] as string;
  };
  const services = byKind('Service');

  const pods: PodmanPod[] = [];
  for (const workload of [...byKind('StatefulSet'), ...byKind('Deployment')]) {
    const stateful = workload.kind === 'StatefulSet';
    const replicas: number = workload.spec.replicas ?? 1;
    for (let i = 0; i < replicas; i++) {
      const name = stateful ? `${workload.metadata.name}-${i}` : replicas === 1 ? workload.metadata.name : `${workload.metadata.name}-${i}`;
      const template = structuredClone(workload.spec.template) as Obj;
      const spec = template.spec as Obj;
      const volumes: Obj[] = spec.volumes ?? [];
      for (const claim of stateful ? (workload.spec.volumeClaimTemplates ?? []) : []) {
        volumes.push({ name: claim.metadata.name, persistentVolumeClaim: { claimName: `${claim.metadata.name}-${name}` } });
      }
      spec.volumes = volumes.map((v) => {
        const source = v.secret
          ? { kind: 'Secret' as const, name: v.secret.secretName, items: v.secret.items }
          : v.configMap
            ? { kind: 'ConfigMap' as const, name: v.configMap.name, items: v.configMap.items }
            : undefined;
        if (!source) return v;
        const data = lookup(source.kind, source.name) as Record<string, string>;
        const dir = join(o.filesDir, name, v.name);
        mkdirSync(dir, { recursive: true, mode: 0o755 });
        const items: { key: string; path: string }[] = source.items ?? Object.keys(data).map((key) => ({ key, path: key }));
        for (const it of items) writeFileSync(join(dir, it.path), lookup(source.kind, source.name, it.key) as string, { mode: 0o644 });
        return { name: v.name, hostPath: { path: dir, type: 'Directory' } };
      });
      for (const c of spec.containers as Obj[]) {
        const env = new Map<string, string>();
        for (const from of c.envFrom ?? []) {
          if (from.configMapRef)
            for (const [k, v] of Object.entries(lookup('ConfigMap', from.configMapRef.name) as Record<string, string>)) env.set(k, v);
          if (from.secretRef)
            for (const [k, v] of Object.entries(lookup('Secret', from.secretRef.name) as Record<string, string>)) env.set(k, v);
        }
        for (const e of c.env ?? []) {
          let value: string;
          if (e.valueFrom?.secretKeyRef) value = lookup('Secret', e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key) as string;
          else if (e.valueFrom?.configMapKeyRef)
            value = lookup('ConfigMap', e.valueFrom.configMapKeyRef.name, e.valueFrom.configMapKeyRef.key) as string;
          else if (e.valueFrom?.fieldRef) {
            const field = e.valueFrom.fieldRef.fieldPath;
            if (field === 'metadata.name') value = name;
            else if (field === 'metadata.namespace') value = 'default';
            else throw new Error(`${name}: fieldRef ${field} is not supported here`);
          } else value = expand(String(e.value ?? ''), env);
          env.set(e.name, value);
        }
        delete c.envFrom;
        c.env = [...env].map(([k, v]) => ({ name: k, value: v }));
        for (const k of ['command', 'args'] as const) if (c[k]) c[k] = (c[k] as string[]).map((a) => expand(a, env));
        const repo = String(c.image).split(':')[0] as string;
        if (!o.images[repo]) throw new Error(`${name}: no local image for ${c.image}`);
        c.image = o.images[repo];
        for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) delete c[probe];
        delete c.ports; // podman 4.3 would publish each containerPort on the host (Redis's 6379 is taken there)
      }
      const aliases = services
        .filter((s) => matches(s.spec.selector, template.metadata?.labels))
        .flatMap((s) =>
          s.spec.clusterIP === 'None' && stateful && workload.spec.serviceName === s.metadata.name
            ? [s.metadata.name, `${name}.${s.metadata.name}`, `${name}.${s.metadata.name}.default.svc`]
            : [s.metadata.name],
        );
      const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: template.metadata?.labels ?? {} }, spec };
      pods.push({ name, aliases, yaml: stringify(pod) });
    }
  }
  return pods;
}
