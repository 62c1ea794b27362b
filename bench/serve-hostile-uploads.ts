/**
 * `facenet serve` under hostile uploads: how long /healthz takes (polled every 20 ms from the
 * same client process) while clients post forged PGM headers (`P5 65535 65535`, 20 bytes that
 * once allocated 4 GB each) and valid large ASCII PGMs (3.6 MB, a JavaScript pass each, answered 200), against the same
 * poll with no attack, in one run. Prints one JSON line per phase.
 *
 *   npx tsx bench/serve-hostile-uploads.ts [--seconds 5] [--attackers 32]
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EmbeddingModel, selectBackend, writeCheckpoint } from '@facenet/core';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, attackers: { type: 'string', default: '32' } } });
const CLI = join(resolve(__dirname, '..'), 'packages', 'cli', 'dist', 'main.js');
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;

const forgedHeader = Buffer.from('P5 65535 65535 255\n').toString('base64');
const side = 1000; // 1000^2 ASCII samples: a 3.6 MB PGM, under the 4 MB upload limit
const asciiPgm = Buffer.from(`P2 ${side} ${side} 255\n${Array.from({ length: side * side }, (_, i) => i % 256).join(' ')}`).toString(
  'base64',
);

async function phase(url: string, name: string, attack: (() => Promise<void>) | null) {
  const seconds = Number(values.seconds);
  const until = performance.now() + seconds * 1000;
  const health: number[] = [];
  let answered = 0;
  const attackers = attack
    ? Array.from({ length: Number(values.attackers) }, async () => {
        while (performance.now() < until) {
          await attack();
          answered++;
        }
      })
    : [];
  const poll = (async () => {
    while (performance.now() < until) {
      const t0 = performance.now();
      await (await fetch(`${url}/healthz`)).arrayBuffer();
      health.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await Promise.all([poll, ...attackers]);
  const r = (x: number) => Number(x.toFixed(1));
  console.log(
    JSON.stringify({
      phase: name,
      attackers: attack ? Number(values.attackers) : 0,
      uploadsAnsweredPerSecond: r(answered / seconds),
      healthzPolls: health.length,
      healthzP50Ms: r(quantile(health, 0.5)),
      healthzP99Ms: r(quantile(health, 0.99)),
      healthzMaxMs: r(Math.max(...health)),
    }),
  );
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'facenet-serve-hostile-'));
  let serve: ChildProcess | undefined;
  try {
    await selectBackend({ log: null });
    const model = new EmbeddingModel({ architecture: 'tiny', imageSize: 32 });
    await writeCheckpoint(join(dir, 'ckpt'), model, undefined, { step: 0, seed: 1, preprocessing: { cropFraction: 1 } });
    model.dispose();
    serve = spawn(process.execPath, [CLI, 'serve', '--checkpoint', join(dir, 'ckpt'), '--port', '0', '--json'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const url = await new Promise<string>((res, rej) => {
      let buf = '';
      serve!.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const line = buf.split('\n').find((l) => l.startsWith('{"event":"ready"'));
        if (line) res((JSON.parse(line) as { url: string }).url);
      });
      serve!.on('exit', (c) => rej(new Error(`serve exited ${c}`)));
    });
    const post = (image: string) => async () => {
      const r = await fetch(`${url}/v1/embed`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ images: [image] }),
      });
      await r.arrayBuffer();
      if (r.status >= 500) throw new Error(`an upload got HTTP ${r.status}`);
    };
    await phase(url, 'quiet', null);
    await phase(url, 'forged-headers', post(forgedHeader));
    await phase(url, 'ascii-4mb', post(asciiPgm));
  } finally {
    serve?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
