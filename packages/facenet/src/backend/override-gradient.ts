import { tf } from './tf';

/**
 * Replaces a kernel's registered gradient. tfjs warns on every override; these are deliberate,
 * so the warning is silenced for the one call.
 */
export function overrideGradient(config: tf.GradConfig): void {
  const prevWarn = console.warn;
  console.warn = () => {};
  try {
    tf.registerGradient(config);
  } finally {
    console.warn = prevWarn;
  }
}
