import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ARCHITECTURES } from '@facenet/core';
import { REPO } from '../helpers';
import { needSoftwareGpu } from '../requirements';

const run = promisify(execFile);
const probe = `require('@facenet/core').selectBackend({ log: null }).then((c) => console.log(JSON.stringify(c)), (e) => { console.log('ERR ' + e.message); })`;

/** The gradient tolerance: relative to each variable's largest gradient (floored; see the fixture). */
const GRADIENT_TOLERANCE = 1e-3;

describe('webgpu backend (Dawn on SwiftShader, a software Vulkan GPU)', function () {
  this.timeout(300_000);

  it('FACENET_BACKEND=webgpu runs on the adapter and reports it; auto passes a software adapter over, saying why', async function () {
    const env = needSoftwareGpu(this);
    const forced = JSON.parse(
      (await run(process.execPath, ['-e', probe], { cwd: REPO, env: { ...env, FACENET_BACKEND: 'webgpu' } })).stdout,
    ) as {
      name: string;
      adapter: { vendor: string; software: boolean; maxBufferSize: number; maxStorageBufferBindingSize: number };
    };
    assert.equal(forced.name, 'webgpu');
    assert.equal(forced.adapter.software, true);
    assert.ok(forced.adapter.maxStorageBufferBindingSize >= 128 * 2 ** 20, JSON.stringify(forced.adapter));
    const auto = JSON.parse(
      (await run(process.execPath, ['-e', probe], { cwd: REPO, env: { ...env, FACENET_BACKEND: 'auto' } })).stdout,
    ) as {
      name: string;
      skipped: { name: string; reason: string }[];
    };
    assert.notEqual(auto.name, 'webgpu');
    assert.match(auto.skipped.find((s) => s.name === 'webgpu')?.reason ?? '', /software adapter/);
  });

  it('without a Vulkan driver, a forced webgpu is a clear error naming what is missing', async function () {
    const env = needSoftwareGpu(this);
    const out = (
      await run(process.execPath, ['-e', probe], {
        cwd: REPO,
        env: { ...env, FACENET_BACKEND: 'webgpu', VK_ICD_FILENAMES: '/nonexistent/icd.json' },
      })
    ).stdout;
    assert.match(
      out,
      /^ERR no usable backend \(webgpu: VK_ICD_FILENAMES\/VK_DRIVER_FILES names \/nonexistent\/icd.json, which does not exist\)/,
    );
  });

  it(`every zoo net's loss, triplets and every gradient equal the cpu backend's (gradients within ${GRADIENT_TOLERANCE} relative)`, async function () {
    const env = needSoftwareGpu(this);
    const { stdout } = await run(process.execPath, ['--require', 'tsx/cjs', join(REPO, 'test', 'unit', 'fixtures', 'webgpu-parity.ts')], {
      cwd: REPO,
      env,
    });
    const rows = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number | string>);
    assert.deepEqual(
      rows.map((r) => r.architecture),
      ARCHITECTURES,
    );
    for (const r of rows) {
      assert.equal(r.tripletsWebgpu, r.tripletsCpu, `${r.architecture}: a different selection`);
      assert.ok(Math.abs((r.lossWebgpu as number) - (r.lossCpu as number)) <= 1e-5 * (r.lossCpu as number), JSON.stringify(r));
      assert.ok((r.worstRelativeGradientError as number) <= GRADIENT_TOLERANCE, JSON.stringify(r));
    }
  });

  it('memory per step is flat on webgpu: tensors, their bytes and the GPU buffers allocated, for every zoo net', async function () {
    const env = needSoftwareGpu(this);
    const { stdout } = await run(process.execPath, ['--require', 'tsx/cjs', join(REPO, 'test', 'unit', 'fixtures', 'webgpu-steps.ts')], {
      cwd: REPO,
      env,
    });
    const rows = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number | string | undefined>);
    assert.deepEqual(
      rows.map((r) => r.architecture),
      ARCHITECTURES,
    );
    for (const r of rows) {
      assert.equal(r.tensorsAfter, r.tensorsBefore, JSON.stringify(r));
      assert.equal(r.bytesAfter, r.bytesBefore, JSON.stringify(r));
      assert.ok(typeof r.gpuBytesAfter === 'number', `the webgpu backend reports its GPU buffers: ${JSON.stringify(r)}`);
      assert.equal(r.gpuBytesAfter, r.gpuBytesBefore, JSON.stringify(r));
    }
  });
});
