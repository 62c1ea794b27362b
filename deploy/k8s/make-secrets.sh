#!/usr/bin/env bash
# Creates the Secret every facenet pod reads (`facenet-secrets`): a random Redis password, API
# tokens (one admin, one read), the key the coordinator signs work items with (workers run no
# other: anyone who can write to Redis could otherwise hand them a step), and a CA with one worker certificate for mutual TLS on the
# allreduce ring (names: *.facenet-worker.<namespace>.svc[.cluster.local], any number of pods).
#
#   deploy/k8s/make-secrets.sh [namespace]             # creates it in the cluster (kubectl apply)
#   DRY_RUN=1 deploy/k8s/make-secrets.sh [namespace]   # prints the Secret as YAML instead
#
# The admin and read tokens are printed once on stderr; keep them (facenet --token, $FACENET_TOKEN).
# Rotate by running it again and restarting the pods (kubectl rollout restart).
set -euo pipefail
ns="${1:-default}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cd "$dir"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 825 -subj "/CN=facenet ring CA" 2>/dev/null
openssl req "${ec[@]}" -keyout tls.key -out tls.csr -subj "/CN=facenet-worker" 2>/dev/null
# Peers dial <pod>.facenet-worker.<namespace>.svc (workers.yaml): a wildcard covers its first label
# for any pod. (TLS clients refuse a wildcard over the two-label <pod>.facenet-worker, which the
# podman test found; listing each pod name instead capped the ring at the names listed.)
printf 'subjectAltName=DNS:*.facenet-worker.%s.svc,DNS:*.facenet-worker.%s.svc.cluster.local\nextendedKeyUsage=serverAuth,clientAuth\n' "$ns" "$ns" > ext
openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tls.crt -days 825 -extfile ext 2>/dev/null
admin="$(openssl rand -hex 24)"
read_token="$(openssl rand -hex 24)"
printf '# facenet API tokens\nadmin:%s\nread:%s\n' "$admin" "$read_token" > api-tokens
kubectl create secret generic facenet-secrets --namespace "$ns" --dry-run=client -o yaml \
  --from-literal=redis-password="$(openssl rand -hex 24)" --from-literal=work-key="$(openssl rand -hex 32)" --from-file=api-tokens \
  --from-file=ca.crt --from-file=tls.crt --from-file=tls.key > secret.yaml
if [ "${DRY_RUN:-0}" = 1 ]; then cat secret.yaml; else kubectl apply -f secret.yaml; fi
echo "facenet API tokens (shown once): admin ${admin}  read ${read_token}" >&2
