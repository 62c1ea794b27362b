import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { CLI, REPO, tempDir } from '../helpers';

/**
 * The code blocks the docs mark as runnable (```sh runnable) are run as a reader would run them:
 * each block one bash script (any failing command fails it), in an empty folder, with `npx
 * facenet` meaning this checkout's CLI (npx outside the repository would look in the registry).
 * Only cheap blocks are marked: no cluster, no download, no data beyond what the block makes.
 */
function runnableBlocks(): { file: string; line: number; script: string }[] {
  const files = [
    join(REPO, 'README.md'),
    ...readdirSync(join(REPO, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => join(REPO, 'docs', f)),
  ];
  const blocks: { file: string; line: number; script: string }[] = [];
  for (const file of files.filter((f) => existsSync(f))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^```sh runnable\n([\s\S]*?)^```$/gm))
      blocks.push({ file: relative(REPO, file), line: text.slice(0, m.index).split('\n').length, script: m[1] as string });
  }
  return blocks;
}

describe('runnable code blocks in the README and docs', function () {
  this.timeout(300_000);
  const blocks = runnableBlocks();

  it('the README has at least one (the first minutes without any data)', () => {
    assert.ok(
      blocks.some((b) => b.file === 'README.md'),
      blocks.map((b) => `${b.file}:${b.line}`).join(', '),
    );
  });

  for (const b of blocks) {
    it(`${b.file}:${b.line} runs to the end`, () => {
      const t = tempDir('facenet-docs-');
      try {
        const shim = `npx() { if [ "$1" = facenet ]; then shift; node ${JSON.stringify(CLI)} "$@"; else command npx "$@"; fi; }\n`;
        const r = spawnSync('bash', ['-euo', 'pipefail', '-c', shim + b.script], { cwd: t.dir, encoding: 'utf8', timeout: 240_000 });
        assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-3000)}`);
      } finally {
        t.cleanup();
      }
    });
  }
});
