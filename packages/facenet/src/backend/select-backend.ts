import { tf } from './tf';
import { projectKernelsApply, useProjectKernels } from './project-kernels';
import { BackendError } from '../errors';
import { GpuAdapterInfo, gpuAdapter, loadWebgpu, watchDevice } from './webgpu';

/** Backend names as users write them (FACENET_BACKEND, --backend). */
export type BackendName = 'webgpu' | 'node-gpu' | 'node' | 'wasm' | 'cpu';
/** `auto`'s order: the GPU backends first (webgpu: any Vulkan GPU; node-gpu: CUDA 11.2 only), then CPU. */
export const BACKEND_ORDER: readonly BackendName[] = ['webgpu', 'node-gpu', 'node', 'wasm', 'cpu'];

export interface BackendChoice {
  /** What was asked for: a name, or 'auto'. */
  requested: BackendName | 'auto';
  /** The backend now running. */
  name: BackendName;
  /** tfjs's own name for it ('tensorflow', 'wasm', 'cpu'). */
  tfName: string;
  /** Why each better backend was passed over (empty when the first choice worked). */
  skipped: { name: BackendName; reason: string }[];
  /** The GPU the webgpu backend runs on. */
  adapter?: GpuAdapterInfo;
}

let current: BackendChoice | undefined;

/** Loading a native addon throws when its install step could not fetch the library. */
function tryRequire(moduleName: string): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(moduleName);
    return undefined;
  } catch (err) {
    return (err as Error).message.split('\n')[0];
  }
}

async function activate(name: BackendName, requested: BackendName | 'auto'): Promise<string | undefined> {
  switch (name) {
    case 'webgpu': {
      const why = await loadWebgpu(requested === 'webgpu');
      if (why) return why;
      break;
    }
    case 'node-gpu': {
      const why = tryRequire('@tensorflow/tfjs-node-gpu');
      if (why) return why;
      break;
    }
    case 'node': {
      const why = tryRequire('@tensorflow/tfjs-node');
      if (why) return why;
      break;
    }
    case 'wasm': {
      const why = tryRequire('@tensorflow/tfjs-backend-wasm');
      if (why) return why;
      break;
    }
    case 'cpu':
      break;
  }
  const tfName = name === 'node' || name === 'node-gpu' ? 'tensorflow' : name;
  try {
    const ok = await tf.setBackend(tfName);
    if (!ok) return `tf.setBackend('${tfName}') returned false`;
    await tf.ready();
    if (name === 'webgpu') watchDevice((tf.backend() as unknown as { device: Parameters<typeof watchDevice>[0] }).device);
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

export function parseBackendName(value: string | undefined): BackendName | 'auto' {
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if ((BACKEND_ORDER as readonly string[]).includes(value)) return value as BackendName;
  throw new BackendError(`unknown backend '${value}': expected one of auto, ${BACKEND_ORDER.join(', ')}`);
}

export interface SelectBackendOptions {
  /** A backend name or 'auto'. @default process.env.FACENET_BACKEND ?? 'auto' */
  backend?: string;
  /** Where to say which backend was chosen. @default console.error; pass null for silence */
  log?: ((line: string) => void) | null;
}

/**
 * Picks the best backend present: webgpu (a hardware adapter), tfjs-node-gpu, tfjs-node, wasm, cpu. An explicit request
 * (FACENET_BACKEND or the option) that cannot load is an error, not a silent fallback.
 * Idempotent: later calls return the first choice.
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<BackendChoice> {
  if (current) return current;
  const requested = parseBackendName(options.backend ?? process.env.FACENET_BACKEND);
  const log = options.log === undefined ? (line: string) => console.error(line) : options.log;
  // Production mode (tf.enableProdMode's flag) silences tfjs's "install tfjs-node" banner (we log
  // our own choice). IS_TEST would too, but it also turns on a per-kernel leak check that counts
  // the tensors a custom-gradient op saves for its backward pass (backend/batch-norm.ts) as leaks.
  tf.env().set('PROD', true);
  const candidates = requested === 'auto' ? BACKEND_ORDER : [requested];
  const skipped: BackendChoice['skipped'] = [];
  for (const name of candidates) {
    const reason = await activate(name, requested);
    if (reason === undefined) {
      // Our gradients and batch norm on wasm/cpu only; tfjs-node keeps TensorFlow's kernels.
      if (projectKernelsApply(tf.getBackend())) useProjectKernels(true);
      const adapter = name === 'webgpu' ? gpuAdapter() : undefined;
      current = { requested, name, tfName: tf.getBackend(), skipped, ...(adapter && { adapter }) };
      const on = adapter ? ` on ${adapter.description || adapter.device} (${adapter.vendor}${adapter.software ? ', software' : ''})` : '';
      log?.(
        `[facenet] backend: ${name}${on}${skipped.length ? ` (skipped ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')})` : ''}`,
      );
      return current;
    }
    skipped.push({ name, reason });
  }
  throw new BackendError(`no usable backend (${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')})`);
}

/** The backend chosen by selectBackend, or undefined before it ran. */
export function currentBackend(): BackendChoice | undefined {
  return current;
}
