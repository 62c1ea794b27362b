import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SWIFTSHADER_ICD, vulkanUnavailable } from '@facenet/core';
import { LFW } from './helpers';

/**
 * What some tests need beyond Node, npm's packages and Redis: programs from Debian and the LFW
 * data. A test that lacks one skips with one line saying what is missing and how to get it, so
 * `npm test` passes on a fresh machine; with FACENET_TEST_REQUIRE_ALL=1 (set by .ci/run, which
 * installs everything) a missing requirement fails the test instead, so CI cannot skip silently.
 */
export type Tool =
  'chromium' | 'prometheus' | 'promtool' | 'kubectl' | 'openssl' | 'redis-server' | 'podman' | 'runc' | 'debootstrap' | 'nginx';

/** Debian's chromium, driven by playwright-core (Playwright's own browser download cannot work here). */
export const CHROMIUM = '/usr/bin/chromium';
const SETUP = '`npm run setup` installs the test tools (Debian packages, needs root)';

function present(tool: Tool): boolean {
  if (tool === 'chromium') return existsSync(CHROMIUM);
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

const said = new Set<string>();
function skipOrFail(ctx: Mocha.Context, what: string, how: string): void {
  const title = ctx.test?.parent?.fullTitle() || ctx.currentTest?.fullTitle() || 'test';
  const line = `needs ${what}; ${how}`;
  if (process.env.FACENET_TEST_REQUIRE_ALL === '1') throw new Error(`${title}: ${line} (FACENET_TEST_REQUIRE_ALL=1)`);
  if (!said.has(title)) {
    said.add(title);
    process.stderr.write(`  [skipped] ${title}: ${line}\n`);
  }
  ctx.skip();
}

/** Skips (or, under FACENET_TEST_REQUIRE_ALL=1, fails) the calling test or hook when a tool is absent. */
export function needTools(ctx: Mocha.Context, ...tools: Tool[]): void {
  const missing = tools.filter((t) => !present(t));
  if (missing.length > 0) skipOrFail(ctx, `${missing.join(', ')} (not found)`, SETUP);
}

/**
 * Skips (or fails, as above) without a software GPU: SwiftShader's Vulkan driver (Debian's
 * chromium-common) and Vulkan's loader (libvulkan1). Returns the environment that selects it.
 */
export function needSoftwareGpu(ctx: Mocha.Context): NodeJS.ProcessEnv {
  const env = { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD };
  const why = vulkanUnavailable(env);
  if (why) skipOrFail(ctx, `a software GPU (${why})`, SETUP);
  return env;
}

/** Skips (or fails, as above) when LFW is not where the tests look for it. */
export function needLfw(ctx: Mocha.Context): void {
  if (!existsSync(join(LFW, 'pairs.txt'))) {
    skipOrFail(
      ctx,
      `LFW at ${LFW} (absent)`,
      '`npx facenet data fetch lfw` gets it (into data/lfw, where the tests look when ../shared/data is absent)',
    );
  }
}

/**
 * Mounts a tmpfs of `size` (e.g. '128k') on `dir`, a real small filesystem for ENOSPC; skips (or
 * fails, as above) where mounting is not permitted (not root, or no CAP_SYS_ADMIN in a container).
 * Returns the unmount.
 */
export function smallFilesystem(ctx: Mocha.Context, dir: string, size: string): { resize: (size: string) => void; unmount: () => void } {
  const mount = (...args: string[]) => spawnSync('mount', args, { encoding: 'utf8' });
  const r = mount('-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir);
  if (r.status !== 0) skipOrFail(ctx, `permission to mount a tmpfs (${r.stderr.trim() || 'mount failed'})`, 'run the tests as root');
  return {
    resize: (s) => {
      const again = mount('-o', `remount,size=${s}`, dir);
      if (again.status !== 0) throw new Error(`remount ${dir}: ${again.stderr}`);
    },
    unmount: () => void spawnSync('umount', ['-l', dir]),
  };
}
