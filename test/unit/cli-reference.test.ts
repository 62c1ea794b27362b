import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderCliReference } from '../../packages/cli/dist/cli-reference';
import { REPO } from '../helpers';

describe('docs/cli.md is the commands’ own reference', function () {
  this.timeout(60_000);
  it('equals what the commander definitions render (npm run docs:cli writes it again)', async () => {
    const env = { ...process.env };
    // Defaults that come from the environment are left out of the page; these keep the render the same everywhere.
    for (const k of Object.keys(process.env)) if (k.startsWith('FACENET_')) delete process.env[k];
    try {
      const rendered = await renderCliReference();
      assert.ok(rendered.includes('### `facenet sweeps create <spec>`'), 'subcommands are rendered');
      assert.equal(readFileSync(join(REPO, 'docs', 'cli.md'), 'utf8'), rendered, 'docs/cli.md is stale: run npm run docs:cli');
    } finally {
      Object.assign(process.env, env);
    }
  });
});
