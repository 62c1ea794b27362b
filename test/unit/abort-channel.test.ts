import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { ABORT_MAX_AGE_MS, readAbortMessage, sealMessage } from '@facenet/service-kit';

describe('abort channel: signed like inbox items', () => {
  const key = Buffer.from(randomBytes(32).toString('hex'));
  const channel = 'p:abort';
  const now = Date.now();
  const message = JSON.stringify({ jobId: 'j', generation: 4, interrupt: true, at: now });

  it('a keyed worker reads an abort sealed with its key, on its channel, and fresh', () => {
    assert.deepEqual(readAbortMessage(key, channel, sealMessage(key, channel, message), now), {
      message: { jobId: 'j', generation: 4, interrupt: true, at: now },
    });
  });

  it('refuses unsigned, another key, another channel, a changed body, a stale or undated one, and garbage', () => {
    const other = Buffer.from(randomBytes(32).toString('hex'));
    const sealed = JSON.parse(sealMessage(key, channel, message)) as { signed: string; sig: string };
    const cases: [string, string][] = [
      [message, 'unsigned'],
      [sealMessage(other, channel, message), 'bad signature'],
      [sealMessage(key, 'q:abort', message), 'bad signature'],
      [JSON.stringify({ ...sealed, signed: sealed.signed.replace('"generation":4', '"generation":5') }), 'bad signature'],
      [sealMessage(key, channel, JSON.stringify({ jobId: 'j', generation: 4, at: now - ABORT_MAX_AGE_MS - 1 })), 'stale'],
      [sealMessage(key, channel, JSON.stringify({ jobId: 'j', generation: 4 })), 'stale'],
      [sealMessage(key, channel, '{"jobId": 7}'), 'malformed'],
      ['not json', 'unsigned'],
    ];
    for (const [text, why] of cases) {
      const r = readAbortMessage(key, channel, text, now);
      assert.ok('refused' in r && r.refused === why, `${text.slice(0, 60)}: ${JSON.stringify(r)}`);
    }
  });

  it('a worker without a key reads both forms (hand-added workers keep working)', () => {
    assert.equal((readAbortMessage(undefined, channel, message, now) as { message: { generation: number } }).message.generation, 4);
    assert.equal(
      (readAbortMessage(undefined, channel, sealMessage(key, channel, message), now) as { message: { generation: number } }).message
        .generation,
      4,
    );
  });
});
