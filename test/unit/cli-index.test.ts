import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../../packages/cli/dist/command-index';
import { CLI, tempDir } from '../helpers';

describe('the CLI loads only the command it runs', function () {
  this.timeout(60_000);

  it('each command in the index loads a command of that name whose description is the summary `facenet --help` lists', async () => {
    for (const [name, c] of Object.entries(COMMANDS)) {
      const cmd = await c.load();
      assert.equal(cmd.name(), name);
      assert.equal(cmd.description(), c.summary, name);
    }
  });

  it('`facenet --version` and `--help` load neither the training library nor TensorFlow.js; a command loads what it needs', () => {
    // A preloaded probe prints every module the process loaded, as it exits.
    const { dir, cleanup } = tempDir();
    const probe = join(dir, 'probe.js');
    writeFileSync(probe, "process.on('exit', () => process.stderr.write('\\nLOADED ' + JSON.stringify(Object.keys(require.cache))));\n");
    try {
      const loaded = (args: string[]) => {
        const r = spawnSync(process.execPath, ['--require', probe, CLI, ...args], { encoding: 'utf8' });
        return { out: r.stdout, modules: JSON.parse(r.stderr.split('LOADED ').pop() as string) as string[] };
      };
      const heavy = (mods: string[]) =>
        mods.filter((m) => /packages\/facenet\/dist|@tensorflow|packages\/coordinator\/dist|onnxruntime/.test(m));
      const version = loaded(['--version']);
      assert.equal(version.out.trim(), '0.1.0');
      assert.deepEqual(heavy(version.modules), []);
      const help = loaded(['--help']);
      assert.match(help.out, /sweeps\s+search recipes/);
      assert.deepEqual(heavy(help.modules), []);
      assert.ok(heavy(loaded(['models']).modules).length > 0, 'models loads the library');
    } finally {
      cleanup();
    }
  });
});
