import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { CLI, ORL, tempDir } from '../helpers';

const run = promisify(execFile);

/** A small LFW-shaped archive (lfw/<Name>/<Name>_NNNN.pgm) and pairs file, served on loopback. */
describe('facenet data fetch lfw (against a local HTTP server)', function () {
  this.timeout(60000);
  let t: ReturnType<typeof tempDir>;
  let server: Server;
  let base: string;
  let archiveSha: string;
  let requests = 0;

  before(async () => {
    t = tempDir('facenet-fetch-');
    const staging = join(t.dir, 'staging');
    for (const [name, src] of [
      ['Ann_A', 's1'],
      ['Bob_B', 's2'],
    ] as const) {
      mkdirSync(join(staging, 'lfw', name), { recursive: true });
      for (const n of [1, 2]) copyFileSync(join(ORL, src, `${n}.pgm`), join(staging, 'lfw', name, `${name}_000${n}.pgm`));
    }
    const archive = join(t.dir, 'lfw.tgz');
    await tar.c({ gzip: true, file: archive, cwd: staging }, ['lfw']);
    const files: Record<string, Buffer> = {
      '/lfw.tgz': readFileSync(archive),
      '/pairs.txt': Buffer.from('1\t1\nAnn_A\t1\t2\nAnn_A\t1\tBob_B\t2\n'),
    };
    archiveSha = createHash('sha256').update(files['/lfw.tgz']!).digest('hex');
    server = createServer((req, res) => {
      requests++;
      const body = files[req.url ?? ''];
      if (!body) {
        res.writeHead(404).end('not found');
        return;
      }
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    t.cleanup();
  });

  const fetchLfw = async (dest: string, ...extra: string[]) => {
    try {
      const r = await run(process.execPath, [
        CLI,
        'data',
        'fetch',
        'lfw',
        '--dest',
        dest,
        '--url',
        `${base}/lfw.tgz`,
        '--pairs-url',
        `${base}/pairs.txt`,
        '--json',
        ...extra,
      ]);
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      return err as { code: number; stdout: string; stderr: string };
    }
  };

  it('downloads, verifies sha256 and lays out images/ and pairs.txt', async () => {
    const dest = join(t.dir, 'ok');
    const r = await fetchLfw(dest, '--sha256', archiveSha);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { identities: number; verified: boolean; archiveSha256: string };
    assert.equal(out.identities, 2);
    assert.equal(out.archiveSha256, archiveSha);
    assert.deepEqual(readdirSync(join(dest, 'images')).sort(), ['Ann_A', 'Bob_B']);
    assert.ok(existsSync(join(dest, 'images', 'Ann_A', 'Ann_A_0002.pgm')));
    assert.ok(existsSync(join(dest, 'pairs.txt')));
    assert.ok(!existsSync(join(dest, 'lfw-archive.tgz')), 'archive removed after extraction');
    assert.ok(requests >= 2);
  });

  it('refuses a sha256 mismatch and leaves no half-fetched dataset', async () => {
    const dest = join(t.dir, 'bad-sha');
    const r = await fetchLfw(dest, '--sha256', '0'.repeat(64));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /sha256 mismatch: got [0-9a-f]{64}, expected 0{64}/);
    assert.ok(!existsSync(join(dest, 'images')));
    assert.ok(!existsSync(join(dest, 'lfw-archive.tgz')) && !existsSync(join(dest, 'lfw-archive.tgz.part')));
    assert.ok(!existsSync(dest), 'the folder this run made is gone too');
  });

  it('without a reachable server it fails at once, leaves no empty folder, and names --url for a mirror', async () => {
    const dest = join(t.dir, 'offline');
    // The default URL, pointed (as the tests must) at a port nothing listens on: what an offline machine sees.
    const r = await run(process.execPath, [CLI, 'data', 'fetch', 'lfw', '--dest', dest], {
      env: { ...process.env, FACENET_LFW_URL: 'http://127.0.0.1:9/lfw-deepfunneled.tgz' },
    }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((r as { code: number }).code, 1);
    assert.match(
      (r as { stderr: string }).stderr,
      /download http:\/\/127\.0\.0\.1:9\/lfw-deepfunneled\.tgz: .*--url URL \(and --pairs-url URL\)/,
    );
    assert.ok(!existsSync(dest), `no empty ${dest} left behind`);
  });

  it('reports HTTP errors by status', async () => {
    const dest = join(t.dir, 'missing');
    const r = await run(process.execPath, [CLI, 'data', 'fetch', 'lfw', '--dest', dest, '--url', `${base}/nope.tgz`]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal((r as { code: number }).code, 1);
    assert.match((r as { stderr: string }).stderr, /download http:\/\/127\.0\.0\.1:\d+\/nope\.tgz: HTTP 404/);
    writeFileSync(join(t.dir, 'unused'), '');
  });
});
