#!/usr/bin/env bash
# Installs the Debian packages the integration and container tests run for real (`npm run setup`;
# .ci/run calls it too). Without them `npm test` still passes: each test that needs a missing tool
# skips and says which one. Needs root (or sudo) and Debian's package mirrors.
set -euo pipefail

# prometheus and promtool (scrape and alert-rule tests), chromium (the status page and reports,
# driven by playwright-core: Playwright's own browser download cannot work here), openssl (mTLS
# certificates). kubectl comes with these machines (1.32); Debian's kubernetes-client is 1.20,
# whose kustomize predates components and `labels`, so it is not a fallback.
need=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || need+=(prometheus)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v openssl >/dev/null || need+=(openssl)
# The webgpu backend's tests run on SwiftShader, the software Vulkan driver that chromium-common
# ships (/usr/lib/chromium/libvk_swiftshader.so), through Vulkan's loader (libvulkan1). Mesa's
# lavapipe lacks features Dawn requires, so VK_ICD_FILENAMES picks SwiftShader.
[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || need+=(chromium-common)
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1 ' || need+=(libvulkan1)
command -v redis-server >/dev/null || need+=(redis-server)
# nginx serves dataset shards over HTTP with range requests (test/integration/object-storage.test.ts).
command -v nginx >/dev/null || need+=(nginx-light)
# The container test (test/containers): podman with runc (crun's cgroup handling fails on these
# machines), its bridge network with DNS (netavark, aardvark-dns, iptables), and debootstrap for
# the base image (no registry is reachable). deploy/podman/containers.conf holds podman's settings.
containers=()
command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null && [ -x /usr/lib/podman/aardvark-dns ] ||
  containers+=(podman runc netavark aardvark-dns iptables debootstrap)

if [ ${#need[@]} -eq 0 ] && [ ${#containers[@]} -eq 0 ]; then
  echo "setup: every test tool is installed"
  exit 0
fi
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
echo "setup: installing ${need[*]} ${containers[*]}"
$sudo apt-get update -qq
[ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
[ ${#containers[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${containers[@]}"
command -v kubectl >/dev/null || echo "setup: kubectl is not installed (no Debian package is recent enough); the kubectl and container tests skip without it"
