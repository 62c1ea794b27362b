/**
 * The project's own gradients and batch-norm op for the wasm and cpu backends, switched on and
 * off as one set.
 *
 * On tfjs-node and tfjs-node-gpu none of this is installed: TensorFlow's own fused kernels and
 * gradients run (selectBackend installs the set only for 'wasm' and 'cpu'; each gradient also
 * hands any other backend to the stock one, for a process that switches backends later).
 * Benchmarks and tests switch the set off to compare with stock tfjs: FACENET_STOCK_KERNELS=1
 * keeps everything stock; FACENET_STOCK_CONV_GRADIENTS=1 / FACENET_STOCK_MATMUL_GRADIENT=1
 * keep one gradient stock.
 */
import { registerConcatGradient, restoreConcatGradient } from './concat-gradient';
import { registerFastConvGradients, restoreConvGradients } from './conv-gradients';
import { registerFastMatMulGradient, restoreMatMulGradient } from './matmul-gradient';
import { registerMaxPoolGradient, restoreMaxPoolGradient } from './maxpool-gradient';

let installed = false;

/** Whether the project's kernels are installed (LayerBuilder picks its batch-norm op by this). */
export function projectKernelsInstalled(): boolean {
  return installed;
}

/** The backends the set is for: the ones whose stock gradients the profile found slow. */
export function projectKernelsApply(tfBackendName: string): boolean {
  return tfBackendName === 'wasm' || tfBackendName === 'cpu';
}

/** Installs (true) or removes (false) the set; the environment's stock switches are honoured on install. */
export function useProjectKernels(on: boolean, env: NodeJS.ProcessEnv = process.env): void {
  if (!on) {
    restoreConvGradients();
    restoreMatMulGradient();
    restoreMaxPoolGradient();
    restoreConcatGradient();
    installed = false;
    return;
  }
  if (env.FACENET_STOCK_KERNELS) return useProjectKernels(false);
  if (!env.FACENET_STOCK_CONV_GRADIENTS) registerFastConvGradients();
  if (!env.FACENET_STOCK_MATMUL_GRADIENT) registerFastMatMulGradient();
  registerMaxPoolGradient();
  registerConcatGradient();
  installed = true;
}
