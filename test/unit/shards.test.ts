import { strict as assert } from 'node:assert';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  DatasetError,
  DiskCache,
  FolderSource,
  HttpStore,
  ImageDecodeError,
  objectStoreFor,
  packShardIndex,
  packShards,
  scanPeopleFolderAsync,
  shardName,
  ShardsSource,
  subIndex,
  unpackIndex,
} from '@facenet/core';
import { allowedLocation } from '@facenet/protocol';
import { ORL, REPO, tempDir } from '../helpers';

describe('tar shards', () => {
  it('hold whole identities, list in tar, and every index range is the original file', async () => {
    const t = tempDir();
    try {
      const orl = await scanPeopleFolderAsync(ORL);
      const r = await packShards(subIndex(orl, [0, 1, 2, 3, 4, 5]), t.dir, 250_000);
      assert.equal(r.images, 60);
      assert.ok(r.shards >= 2, `${r.shards} shards`);
      const lines = readFileSync(join(t.dir, 'index.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      const shardsOf = new Map<string, Set<number>>();
      for (const [n, l] of lines.entries()) {
        const original = readFileSync(orl.images[Math.floor(n / 10)]![n % 10]!);
        const inShard = readFileSync(join(t.dir, shardName(l.shard))).subarray(l.offset, l.offset + l.size);
        assert.ok(inShard.equals(original), `line ${n + 1}`);
        shardsOf.set(l.identity, (shardsOf.get(l.identity) ?? new Set()).add(l.shard));
      }
      for (const [id, s] of shardsOf) assert.equal(s.size, 1, `${id} split over shards`);
      // A plain tar: GNU tar lists image and label members in pairs (the WebDataset convention).
      const members = execFileSync('tar', ['-tf', join(t.dir, shardName(0))], { encoding: 'utf8' })
        .trim()
        .split('\n');
      assert.deepEqual(members.slice(0, 2), ['0000000_0000.pgm', '0000000_0000.json']);
    } finally {
      t.cleanup();
    }
  });

  it('a shards source decodes what a folder source decodes, and refuses a key that is not a member place', async () => {
    const t = tempDir();
    try {
      const orl = await scanPeopleFolderAsync(ORL);
      await packShards(subIndex(orl, [0, 1]), t.dir);
      const store = objectStoreFor(t.dir);
      const src = new ShardsSource(store, unpackIndex(await packShardIndex(store)));
      assert.deepEqual([...src.index.names], ['s1', 's10']);
      const folder = new FolderSource(ORL);
      const a = await src.read(src.index.images[1]![3]!, 20);
      const b = await folder.read(folder.index.images[1]![3]!, 20);
      assert.deepEqual(a, b);
      await assert.rejects(
        src.read('/etc/passwd', 20),
        (e: unknown) => e instanceof ImageDecodeError && /not an image of this dataset/.test(e.message),
      );
      await assert.rejects(src.read('7:0:10:jpg', 20), (e: unknown) => e instanceof ImageDecodeError && /shard-00007\.tar/.test(e.message));
    } finally {
      t.cleanup();
    }
  });
});

describe('hostile shard indexes and member keys', () => {
  // A member size of 2^31 once passed admission and aborted every worker that read it
  // (node::fs::Read asserts a 32-bit length): one POST took the whole pool down.
  it('an index whose member is larger than any face image is refused at admission, naming the line', async () => {
    const t = tempDir();
    try {
      const line = (size: number) => JSON.stringify({ identity: 'a', shard: 0, offset: 0, size, ext: 'jpg' });
      writeFileSync(join(t.dir, 'index.jsonl'), `${line(100)}\n${line(2 ** 31)}\n`);
      await assert.rejects(
        packShardIndex(objectStoreFor(t.dir)),
        (e: unknown) =>
          e instanceof DatasetError &&
          e.message.startsWith(`${join(t.dir, 'index.jsonl')} line 2: size 2147483648 bytes; a member may be at most`),
      );
    } finally {
      t.cleanup();
    }
  });

  it('a key with a huge size is a skipped image, and the store refuses such a read, whoever asks', async () => {
    const t = tempDir();
    try {
      const orl = await scanPeopleFolderAsync(ORL);
      await packShards(subIndex(orl, [0, 1]), t.dir);
      const store = objectStoreFor(t.dir);
      const src = new ShardsSource(store, unpackIndex(await packShardIndex(store)));
      for (const forged of ['0:512:2147483648:pgm', '0:0:4294967295:pgm'])
        await assert.rejects(src.read(forged, 20), (e: unknown) => e instanceof ImageDecodeError, forged);
      // The store itself refuses a read no face image needs, whoever asks.
      await assert.rejects(store.read(shardName(0), 512, 2 ** 31), (e: unknown) => e instanceof DatasetError && /at most/.test(e.message));
      await assert.rejects(store.read(shardName(0), -1, 10), (e: unknown) => e instanceof DatasetError);
    } finally {
      t.cleanup();
    }
  });
});

describe('object stores', () => {
  let server: Server;
  let base: string;
  const body = Buffer.from('0123456789abcdefghij');
  const hits: Record<string, number> = {};
  let failFirst = 0;

  before(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '';
      hits[path] = (hits[path] ?? 0) + 1;
      if (path === '/flaky.bin' && failFirst-- > 0) return res.writeHead(503).end();
      if (path === '/norange.bin') return res.writeHead(200).end(body);
      if (path !== '/flaky.bin' && path !== '/data.bin') return res.writeHead(404).end();
      const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
      if (!m) return res.writeHead(200).end(body);
      res.writeHead(206, { 'content-range': `bytes ${m[1]}-${m[2]}/${body.length}` }).end(body.subarray(Number(m[1]), Number(m[2]) + 1));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('HTTP: reads byte ranges; retries 5xx with backoff; a 404 or an ignored range is a clear error, not retried', async () => {
    const store = new HttpStore(base, { backoffMs: 10 });
    assert.equal((await store.read('data.bin', 3, 4)).toString(), '3456');
    failFirst = 2;
    assert.equal((await store.read('flaky.bin', 10, 3)).toString(), 'abc');
    assert.equal(hits['/flaky.bin'], 3, 'two 503s, then the answer');
    await assert.rejects(
      store.read('missing.bin', 0, 4),
      (e: unknown) => e instanceof DatasetError && /missing\.bin: no such object \(HTTP 404\)/.test(e.message),
    );
    assert.equal(hits['/missing.bin'], 1);
    await assert.rejects(store.read('norange.bin', 0, 4), /ignored the byte range/);
    failFirst = 10;
    await assert.rejects(new HttpStore(base, { backoffMs: 1, attempts: 3 }).read('flaky.bin', 0, 1), /HTTP 503 \(after 3 tries\)/);
  });

  it('the disk cache serves the second read without the network, evicts least recently used by bytes', async () => {
    const t = tempDir();
    try {
      const cache = new DiskCache(t.dir, 10);
      let fetches = 0;
      const fetch = (s: string) => async () => (fetches++, Buffer.from(s));
      assert.equal((await cache.get('a', fetch('aaaa'))).toString(), 'aaaa');
      assert.equal((await cache.get('a', fetch('xxxx'))).toString(), 'aaaa');
      await cache.get('b', fetch('bbbb'));
      await cache.get('a', fetch('xxxx')); // a is now the most recent
      await cache.get('c', fetch('cccc')); // 12 bytes > 10: b goes
      assert.deepEqual(readdirSync(t.dir).sort(), ['a', 'c']);
      assert.equal(fetches, 3);
      assert.deepEqual(
        { hits: cache.stats.hits, misses: cache.stats.misses, bytes: cache.stats.bytesFetched },
        { hits: 2, misses: 3, bytes: 12 },
      );
      // A fresh process finds the entries of the last one.
      const again = new DiskCache(t.dir, 10);
      assert.equal((await again.get('c', fetch('zzzz'))).toString(), 'cccc');
    } finally {
      t.cleanup();
    }
  });

  it('a process killed while writing a cache entry leaves no entry: the next one fetches again', async function () {
    this.timeout(30_000);
    const t = tempDir();
    try {
      // The child writes a 400 MB entry; it is killed as soon as the partial file appears.
      const script = join(t.dir, 'child.js');
      writeFileSync(
        script,
        `const { DiskCache } = require(${JSON.stringify(join(REPO, 'packages', 'facenet', 'dist', 'index.js'))});
         new DiskCache(${JSON.stringify(join(t.dir, 'cache'))}, 2 ** 40).get('big', async () => Buffer.alloc(400 * 2 ** 20, 7));`,
      );
      const child = spawn(process.execPath, [script], { stdio: 'ignore' });
      const cacheDir = join(t.dir, 'cache');
      const end = Date.now() + 20_000;
      while (!(existsSync(cacheDir) && readdirSync(cacheDir).some((f) => f.startsWith('partial-')))) {
        if (Date.now() > end) throw new Error('the child never started writing');
        await new Promise((r) => setTimeout(r, 5));
      }
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      assert.ok(!readdirSync(cacheDir).includes('big'), 'no entry under its own name');
      let fetched = false;
      const got = await new DiskCache(cacheDir, 2 ** 40).get('big', async () => ((fetched = true), Buffer.from('fresh')));
      assert.ok(fetched);
      assert.equal(got.toString(), 'fresh');
      assert.deepEqual(readdirSync(cacheDir), ['big'], 'the partial file was removed');
    } finally {
      t.cleanup();
    }
  });

  it('a remote location must be under FACENET_DATA_URLS, compared as folders', () => {
    const urls = ['https://data.example.com/faces/', 's3://bucket/sets/'];
    for (const ok of ['https://data.example.com/faces/vgg2', 's3://bucket/sets/a/b']) assert.ok(allowedLocation(ok, [], urls), ok);
    for (const bad of [
      'https://data.example.com/facesx',
      'https://data.example.com.evil.org/faces/x',
      'https://data.example.com/faces/../private',
      'https://user:pw@data.example.com/faces/x',
      's3://bucket2/sets/x',
      'http://data.example.com/faces/x',
    ])
      assert.ok(!allowedLocation(bad, [], urls), bad);
    assert.ok(!allowedLocation('https://data.example.com/faces/x', [], []), 'none allowed by default');
  });

  it('a folder of shards hashes the same however it is named (the index is content-addressed by what it lists)', async () => {
    const t = tempDir();
    try {
      await packShards(subIndex(await scanPeopleFolderAsync(ORL), [0]), join(t.dir, 'a'));
      await packShards(subIndex(await scanPeopleFolderAsync(ORL), [0]), join(t.dir, 'b'));
      const h = async (d: string) =>
        createHash('sha256')
          .update(await packShardIndex(objectStoreFor(d)))
          .digest('hex');
      assert.equal(await h(join(t.dir, 'a')), await h(join(t.dir, 'b')));
    } finally {
      t.cleanup();
    }
  });
});
