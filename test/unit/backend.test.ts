import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BackendError, parseBackendName } from '@facenet/core';
import { REPO } from '../helpers';

const run = promisify(execFile);
const probe = `require('@facenet/core').selectBackend().then((c) => console.log(JSON.stringify(c)), (e) => { console.log('ERR ' + e.message); })`;

async function choose(env: Record<string, string>): Promise<string> {
  const r = await run(process.execPath, ['-e', probe], { cwd: REPO, env: { ...process.env, ...env } });
  return r.stdout.trim();
}

describe('backend selection', function () {
  this.timeout(60000);

  it('validates names', () => {
    assert.equal(parseBackendName(undefined), 'auto');
    assert.equal(parseBackendName('cpu'), 'cpu');
    assert.throws(
      () => parseBackendName('tpu'),
      (e: unknown) => e instanceof BackendError && /unknown backend 'tpu'/.test(e.message),
    );
  });

  it('auto picks the best backend present and says why it skipped the others', async () => {
    const c = JSON.parse(await choose({ FACENET_BACKEND: '' })) as { name: string; skipped: { name: string; reason: string }[] };
    assert.ok(['node-gpu', 'node', 'wasm'].includes(c.name), c.name);
    const order = ['webgpu', 'node-gpu', 'node', 'wasm', 'cpu'];
    assert.deepEqual(
      c.skipped.map((s) => s.name),
      order.slice(0, order.indexOf(c.name)),
    );
    for (const s of c.skipped) assert.ok(s.reason.length > 0);
  });

  it('FACENET_BACKEND forces a backend', async () => {
    const c = JSON.parse(await choose({ FACENET_BACKEND: 'cpu' })) as { name: string; tfName: string };
    assert.deepEqual([c.name, c.tfName], ['cpu', 'cpu']);
  });

  it('a forced backend that cannot load is an error, not a silent fallback', async function () {
    let nodeInstalled = true;
    try {
      require.resolve('@tensorflow/tfjs-node');
    } catch {
      nodeInstalled = false;
    }
    if (nodeInstalled) this.skip();
    assert.match(await choose({ FACENET_BACKEND: 'node' }), /^ERR no usable backend \(node: /);
  });
});
