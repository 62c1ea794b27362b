#!/usr/bin/env bash
# `npm run bundle:gpu-probe [OUT]`: bench/gpu-probe.ts as one self-contained folder for a GPU
# machine with no package registry and no Node installed: the probe bundled into one JavaScript
# file (esbuild: tfjs, the webgpu backend and the project's model code; no native module but
# Dawn's), dawn.node for linux-x64, the PyTorch side (bench/torch/zoo_nets.py), a launcher and a
# README; then OUT.tar.xz. Bring a `node` binary (v18+) beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist/gpu-probe}"
rm -rf "$out" && mkdir -p "$out"
npx esbuild bench/gpu-probe.ts --bundle --platform=node --target=node18 --outfile="$out/gpu-probe.js" --log-level=warning
cp node_modules/webgpu/dist/linux-x64/dawn.node "$out/dawn.node"
cp bench/torch/zoo_nets.py "$out/zoo_nets.py"
cat >"$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# Runs the probe with the node binary beside this folder (or on the PATH); arguments pass through.
here="$(cd "$(dirname "$0")" && pwd)"
node="${NODE:-$here/node}"; [ -x "$node" ] || node=node
export FACENET_DAWN_NODE="$here/dawn.node"
exec "$node" "$here/gpu-probe.js" --torch-script "$here/zoo_nets.py" "$@"
RUN
chmod +x "$out/run.sh"
cat >"$out/README.md" <<'README'
# facenet GPU probe

What a GPU does for facenet-trainer's webgpu backend (TensorFlow.js on Dawn, over Vulkan): the
adapter, matmul and conv GFLOP/s, training and embedding img/s of tiny and inception-small at 64,
96 and 160 px, one JSON line each. Everything is in this folder but `node` (v18 or later, one
file: put it here as `./node`, or on the PATH) and Vulkan's loader.

## On a machine with an NVIDIA GPU and PyTorch but no Vulkan loader

```sh
# 1. Vulkan's loader, from Debian (or the distribution's libvulkan1), unpacked without root:
apt-get download libvulkan1 && dpkg -x libvulkan1_*.deb vk && export LD_LIBRARY_PATH=$PWD/vk/usr/lib/x86_64-linux-gnu
# 2. The NVIDIA driver's Vulkan manifest (the driver ships it; in containers the toolkit mounts it
#    with NVIDIA_DRIVER_CAPABILITIES including `graphics`):
export VK_DRIVER_FILES=$(ls /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json \
  /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json 2>/dev/null | head -1)
# 3. The probe, with PyTorch on CUDA measured beside it in the same run (same nets, same batch):
./run.sh --torch python3 --torch-device cuda
```

The first line names the adapter (`"software": false` on a real GPU). Without `--torch` only the
webgpu side runs. `--sizes 64,96`, `--batch 40`, `--steps 5`, `--matmul 2048` change the work.
README
tar -C "$(dirname "$out")" -cJf "$out.tar.xz" "$(basename "$out")"
du -sh "$out" "$out.tar.xz"
