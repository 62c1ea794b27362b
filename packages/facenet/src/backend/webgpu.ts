import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The WebGPU backend: TensorFlow.js's webgpu kernels (@tensorflow/tfjs-backend-webgpu) on Dawn,
 * Chromium's WebGPU implementation, through its own Node bindings (npm `webgpu`, which ships
 * dawn.node: nothing is downloaded at install). On Linux Dawn drives the GPU through Vulkan, so
 * any GPU with a Vulkan driver works (NVIDIA from Maxwell on, AMD, Intel), with no CUDA or cuDNN
 * version to match. On a machine without a GPU, SwiftShader (a software Vulkan driver, in
 * Debian's chromium-common) gives an adapter for tests: slower than wasm, so `auto` passes it
 * over and only FACENET_BACKEND=webgpu selects it.
 */

/**
 * Whether the running backend can read tensors synchronously. tfjs-webgpu reads synchronously only
 * through a browser's OffscreenCanvas; in Node a read is a buffer map, which resolves on the event
 * loop. Code that reads values mid-computation (triplet selection, the finite check) asks this.
 */
export function readsSynchronously(backendName: string): boolean {
  return backendName !== 'webgpu';
}

/** What a worker reports of its GPU: registration, status page, metrics. */
export interface GpuAdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software adapter (SwiftShader): correct, not fast. */
  software: boolean;
  /** Largest single buffer, bytes: one tensor must fit. */
  maxBufferSize: number;
  /** Largest buffer one shader may bind, bytes: the largest tensor a kernel reads or writes. */
  maxStorageBufferBindingSize: number;
}

/** Where Vulkan's loader looks for drivers' manifests when no variable names one. */
const ICD_FOLDERS = ['/etc/vulkan/icd.d', '/usr/share/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
/** Debian's chromium-common ships SwiftShader's manifest here. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

const LOADER_PATHS = [
  '/usr/lib/x86_64-linux-gnu/libvulkan.so.1',
  '/usr/lib/aarch64-linux-gnu/libvulkan.so.1',
  '/usr/lib64/libvulkan.so.1',
  '/usr/lib/libvulkan.so.1',
];

/**
 * Why no Vulkan adapter can exist here, found without loading Dawn (which prints the Vulkan
 * loader's warnings to stderr when it finds no driver); undefined when one may. Linux only: Dawn
 * picks Metal or D3D elsewhere.
 */
export function vulkanUnavailable(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const named = env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES;
  const hasLoader =
    LOADER_PATHS.some((p) => existsSync(p)) ||
    (env.LD_LIBRARY_PATH ?? '').split(':').some((d) => d && existsSync(join(d, 'libvulkan.so.1')));
  if (!hasLoader) return 'no Vulkan loader (libvulkan.so.1; Debian: apt-get install libvulkan1)';
  if (named) {
    const missing = named.split(':').filter((f) => f && !existsSync(f));
    return missing.length ? `VK_ICD_FILENAMES/VK_DRIVER_FILES names ${missing.join(', ')}, which does not exist` : undefined;
  }
  const manifests = ICD_FOLDERS.flatMap((d) => (existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.json')) : []));
  if (manifests.length) return undefined;
  const hint = existsSync(SWIFTSHADER_ICD) ? `; for the software GPU set VK_ICD_FILENAMES=${SWIFTSHADER_ICD}` : '';
  return `no Vulkan driver (no manifest in ${ICD_FOLDERS.join(', ')}; an NVIDIA container needs NVIDIA_DRIVER_CAPABILITIES to include graphics)${hint}`;
}

interface DawnAdapter {
  info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
}

let adapterInfo: GpuAdapterInfo | undefined;
/** The first error the device reported since the last check: a kernel it refused, or the device lost. */
let deviceFault: string | undefined;

interface DawnDevice {
  addEventListener(type: 'uncapturederror', listener: (e: { error: { message: string } }) => void): void;
  lost: Promise<{ reason: string; message: string }>;
}

/**
 * Watches the device tfjs made. A WebGPU validation error does not throw: the kernel never runs and
 * its output is whatever the buffer held (seen: an addN of 29 inputs over the 8-buffer limit), so
 * each is recorded here and the next checkGpuFaults() fails the step that saw it.
 */
export function watchDevice(device: DawnDevice): void {
  device.addEventListener('uncapturederror', (e) => {
    deviceFault ??= e.error.message.split('\n')[0];
  });
  void device.lost.then((info) => {
    deviceFault = `the GPU device was lost (${info.reason}): ${info.message}`;
  });
}

/** Throws what the device reported since the last call (a step's result is not to be trusted). */
export function checkGpuFaults(onFault: (message: string) => Error): void {
  if (deviceFault === undefined) return;
  const message = deviceFault;
  if (!message.startsWith('the GPU device was lost')) deviceFault = undefined;
  throw onFault(message);
}

/** The adapter the webgpu backend runs on, once loadWebgpu succeeded. */
export function gpuAdapter(): GpuAdapterInfo | undefined {
  return adapterInfo;
}

/**
 * Makes WebGPU available to TensorFlow.js in this process (navigator.gpu from Dawn) and registers
 * the webgpu backend. Returns why not, or undefined. `allowSoftware`: accept SwiftShader.
 */
export async function loadWebgpu(allowSoftware: boolean): Promise<string | undefined> {
  const why = vulkanUnavailable();
  if (why) return why;
  let dawn: { create: (flags: string[]) => { requestAdapter(o?: object): Promise<DawnAdapter | null> }; globals: object };
  try {
    // The package's own entry is an ES module; its binary is plain CommonJS-loadable.
    // FACENET_DAWN_NODE names the binary where no node_modules exists (the GPU probe's bundle).
    const binary =
      process.env.FACENET_DAWN_NODE ||
      join(dirname(require.resolve('webgpu/package.json')), 'dist', `${process.platform}-${process.arch}`, 'dawn.node');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    dawn = require(binary);
  } catch (err) {
    return `cannot load Dawn (npm webgpu): ${(err as Error).message.split('\n')[0]}`;
  }
  const gpu = dawn.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return 'Dawn found no WebGPU adapter (no usable Vulkan driver)';
  const info: GpuAdapterInfo = {
    vendor: adapter.info.vendor,
    architecture: adapter.info.architecture,
    device: adapter.info.device,
    description: adapter.info.description,
    software:
      adapter.info.isFallbackAdapter === true ||
      /swiftshader|llvmpipe|lavapipe/i.test(`${adapter.info.architecture} ${adapter.info.description}`),
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  };
  if (info.software && !allowSoftware)
    return `only a software adapter (${info.description}), slower than wasm; FACENET_BACKEND=webgpu selects it`;
  Object.assign(globalThis, dawn.globals);
  // tfjs looks for navigator.gpu (Node 20 has no navigator; 21+ has one without gpu).
  Object.defineProperty(globalThis, 'navigator', { value: { gpu, userAgent: 'node', vendor: '' }, configurable: true, writable: true });
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@tensorflow/tfjs-backend-webgpu');
  } catch (err) {
    return `cannot load @tensorflow/tfjs-backend-webgpu: ${(err as Error).message.split('\n')[0]}`;
  }
  adapterInfo = info;
  return undefined;
}
