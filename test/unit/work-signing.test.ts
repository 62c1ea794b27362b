import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signatureProblem, signItem, workKeyFromEnv } from '@facenet/service-kit';
import { tempDir } from '../helpers';

describe('work signing: the key, the signature, the checks', () => {
  it('reads FACENET_WORK_KEY or FACENET_WORK_KEY_FILE; a short or unreadable key names its variable', () => {
    assert.equal(workKeyFromEnv({}), undefined);
    assert.equal(workKeyFromEnv({ FACENET_WORK_KEY: 'k'.repeat(32) })?.toString(), 'k'.repeat(32));
    assert.throws(() => workKeyFromEnv({ FACENET_WORK_KEY: 'short' }), /FACENET_WORK_KEY: the work key must be at least 32 characters/);
    const { dir, cleanup } = tempDir();
    try {
      writeFileSync(join(dir, 'key'), `${'f'.repeat(40)}\n`);
      assert.equal(
        workKeyFromEnv({ FACENET_WORK_KEY_FILE: join(dir, 'key') })?.toString(),
        'f'.repeat(40),
        'the trailing newline of a mounted Secret is dropped',
      );
      assert.throws(() => workKeyFromEnv({ FACENET_WORK_KEY_FILE: join(dir, 'absent') }), /FACENET_WORK_KEY_FILE: cannot read .*: ENOENT/);
    } finally {
      cleanup();
    }
  });

  it('a signature covers the id and the exact data: another id, a changed byte, another key or none is refused', () => {
    const key = Buffer.from('a'.repeat(32));
    const data = JSON.stringify({ kind: 'state', jobId: 'j1' });
    const sig = signItem(key, 'item-1', data);
    assert.equal(signatureProblem(key, 'item-1', data, sig), undefined);
    assert.equal(signatureProblem(key, 'item-2', data, sig), 'bad signature');
    assert.equal(signatureProblem(key, 'item-1', data.replace('j1', 'j2'), sig), 'bad signature');
    assert.equal(signatureProblem(Buffer.from('b'.repeat(32)), 'item-1', data, sig), 'bad signature');
    assert.equal(signatureProblem(key, 'item-1', data, undefined), 'unsigned');
    assert.equal(signatureProblem(key, 'item-1', data, 'zz'), 'bad signature', 'not hex');
    assert.equal(signatureProblem(key, 'item-1', data, sig.slice(0, 10)), 'bad signature', 'truncated');
  });
});
