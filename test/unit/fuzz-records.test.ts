import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { compileTrainOptions, FacenetError, SpecError } from '@facenet/core';
import {
  abortMessageSchema,
  evaluationRecordSchema,
  jobRecordSchema,
  miningPlanSchema,
  parseJobSpec,
  parseStored,
  stepRecordSchema,
  StoredRecordError,
  sweepRecordSchema,
  sweepSpecSchema,
  workerInfoSchema,
} from '@facenet/protocol';
import type { ShardJobData } from '@facenet/protocol';
import {
  checkWorkerJob,
  decodeHello,
  encodeHello,
  FrameReader,
  frameHeader,
  FrameType,
  RejectedJobError,
  WorkerError,
} from '@facenet/worker';
import { expectTypedOrValid, FUZZ, hostileJsonText, mutated } from '../fuzz';
import { storedJob, storedStep } from '../helpers';

/**
 * Everything the coordinator and workers read back from Redis, the API or a peer socket is
 * outside input: fuzzed from valid values (mutated in one to three places) and from noise. The
 * property each time: a value that passes the schema, or the parser's own typed error; never a
 * TypeError from deep inside, never a hang.
 */
const evaluation = {
  jobId: 'j',
  step: 10,
  checkpointDir: '/ckpt/j/step-000010',
  set: 'holdout',
  pairs: 600,
  folds: 10,
  accuracy: 0.9,
  accuracyStd: 0.01,
  val: 0.5,
  valStd: 0.05,
  far: 0.001,
  farTarget: 0.001,
  auc: 0.95,
  threshold: 1.1,
  droppedPairs: 0,
  skippedImages: 0,
  seconds: 3,
  at: '2026-12-07T00:00:00.000Z',
  allPairs: { valAt1e3: 0.4, valAt1e4: null, images: 100, genuinePairs: 900, impostorPairs: 4000, impostorPairsScored: 4000 },
};
const worker = {
  id: 'w1',
  address: '127.0.0.1:7000',
  host: 'node-a',
  pid: 42,
  backend: 'cpu',
  startedAt: '2026-12-07T00:00:00.000Z',
  budget: { memoryBytes: 2 ** 30, gflops: 10 },
};
const miningPlan = {
  jobId: 'j',
  version: 3,
  step: 20,
  checkpoint: '/ckpt/j/step-000020',
  createdAt: '2026-12-07T00:00:00.000Z',
  hardness: 0.5,
  floor: false,
  pairs: [[0, 1, 2]],
  confusable: { '0': [1, 2] },
  sample: [{ anchor: 'a', positive: 'b', negative: 'c', dap: 0.3, dan: 0.9 }],
  stats: { images: 10 },
  skippedSteps: [],
  timings: { embedMs: 1, mineMs: 2, images: 10 },
};
const sweepSpec = {
  name: 'lr',
  base: { dataset: { kind: 'synthetic', identities: 8, imagesPerIdentity: 4 } },
  parameters: [{ path: 'train.optimizer.learningRate', values: [0.01, 0.05] }],
  search: { kind: 'grid', seed: 1 },
};
const sweep = {
  id: 'sw1',
  spec: sweepSpecSchema.parse(sweepSpec),
  state: 'running',
  trials: [{ index: 0, params: { lr: 0.01 }, jobId: 'j1', state: 'running', scores: [0.2, 0.3], rankSeconds: 12 }],
  createdAt: '2026-12-07T00:00:00.000Z',
  updatedAt: '2026-12-07T00:00:00.000Z',
};

describe('fuzz: stored records, specs, shard jobs and ring frames (seeded)', function () {
  this.timeout(120_000);

  const records = [
    ['job', jobRecordSchema, storedJob('j', 'running')],
    ['step', stepRecordSchema, storedStep(3, 0.5)],
    ['evaluation', evaluationRecordSchema, evaluation],
    ['worker', workerInfoSchema, worker],
    ['abort message', abortMessageSchema, { jobId: 'j', generation: 2, interrupt: true }],
    ['mining plan', miningPlanSchema, miningPlan],
    ['sweep', sweepRecordSchema, sweep],
  ] as const;

  for (const [what, schema, valid] of records)
    it(`a stored ${what} record parses or is refused with StoredRecordError naming it`, () => {
      // The valid record itself must parse, or the mutations below would prove nothing.
      parseStored(schema as never, JSON.stringify(valid), what);
      fc.assert(
        fc.property(hostileJsonText(valid), (raw) =>
          expectTypedOrValid(
            () => parseStored(schema as never, raw, `${what} x`),
            [StoredRecordError],
            (v) => assert.equal(typeof v, 'object'),
          ),
        ),
        FUZZ,
      );
    });

  it('a job spec parses (and a parsed spec parses again to itself) or is refused with SpecError', () => {
    const valid = {
      dataset: { kind: 'folder', path: '/data/orl' },
      train: { steps: 100, batch: { P: 8, K: 4 }, optimizer: { name: 'adam', learningRate: 0.01 } },
      worldSize: 4,
      minWorldSize: 2,
      evaluation: { farTarget: 0.001, folds: [1, 2] },
      allreduce: { compression: 'fp16' },
      queue: 'default',
      priority: 5,
    };
    parseJobSpec(valid);
    fc.assert(
      fc.property(mutated(valid), (spec) =>
        expectTypedOrValid(
          () => parseJobSpec(spec),
          [SpecError],
          (v) => assert.deepEqual(parseJobSpec(JSON.parse(JSON.stringify(v))), v),
        ),
      ),
      FUZZ,
    );
  });

  it('a sweep spec parses or gives issues (zod never throws from safeParse)', () => {
    assert.ok(sweepSpecSchema.safeParse(sweepSpec).success);
    fc.assert(
      fc.property(mutated(sweepSpec), (spec) => {
        const r = sweepSpecSchema.safeParse(spec);
        if (!r.success) assert.ok(r.error.issues.length > 0);
      }),
      FUZZ,
    );
  });

  it('a shard job taken from a worker inbox is checked or refused with RejectedJobError, never a crash', () => {
    const dataset = { kind: 'synthetic' as const, identities: 12, imagesPerIdentity: 6, seed: 7 };
    const valid: ShardJobData = {
      jobId: 'j',
      step: 3,
      rank: 1,
      generation: 1,
      ring: { size: 2, predecessor: '10.0.0.1:7000', partners: ['10.0.0.1:7000'] },
      shards: [[{ identity: 0, key: 'synthetic:0:0' }]],
      prefetch: { step: 4, shards: [[{ identity: 1, key: 'synthetic:1:0' }]] },
      dataset,
      train: compileTrainOptions({ model: { architecture: 'tiny', imageSize: 24 }, batch: { P: 4, K: 3 } }),
      restoreFrom: null,
      trustHeld: false,
      checkpointDir: '/ckpt/j',
      checksum: false,
      learningRateScale: 1,
      collectiveSecret: 's',
    };
    const o = { dataRoots: ['/data'], checkpointRoot: '/ckpt' };
    checkWorkerJob(valid, o);
    fc.assert(
      fc.property(mutated(valid), (d) => expectTypedOrValid(() => checkWorkerJob(d as ShardJobData, o), [RejectedJobError])),
      // Found by this fuzz: a job of `null`, and a checkpointDir of `null` (TypeErrors, not refusals).
      { ...FUZZ, examples: [[null], [{ ...valid, checkpointDir: null }], [{ ...valid, restoreFrom: 5 }]] },
    );
  });

  it('a ring hello decodes or says what is wrong, for any bytes', () => {
    const valid = { collective_id: 'j/3/1', to_rank: 1, secret: 'abc' };
    assert.deepEqual(decodeHello(encodeHello(valid).subarray(4)), valid);
    fc.assert(
      fc.property(fc.oneof(hostileJsonText(valid), fc.string()), (text) => {
        const h = decodeHello(Buffer.from(text));
        if (typeof h !== 'string') {
          assert.equal(typeof h.collective_id, 'string');
          assert.ok(Number.isInteger(h.to_rank) && h.to_rank >= 0);
        }
      }),
      FUZZ,
    );
  });

  it('a ring byte stream, split anywhere, yields whole in-order elements or a typed error', () => {
    const frame = fc.oneof(
      fc.tuple(fc.nat({ max: 3 }), fc.nat({ max: 100 }), fc.nat({ max: 8 })).map(([round, offset, n]) => {
        const payload = Buffer.alloc(n * 4, 7);
        return Buffer.concat([frameHeader(FrameType.Data, round, offset, payload.length), payload]);
      }),
      fc.constant(frameHeader(FrameType.End, 0, 0, 0)),
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
      fc
        .tuple(fc.constantFrom(0, 1, 2, 3, 4, 0xffffffff), fc.nat(), fc.nat(), fc.constantFrom(0, 3, 4096, 2 ** 31, 0xffffffff))
        .map(([type, a, b, length]) => {
          const h = Buffer.alloc(16);
          h.writeUInt32LE(type, 0);
          h.writeUInt32LE(a >>> 0, 4);
          h.writeUInt32LE(b >>> 0, 8);
          h.writeUInt32LE(length >>> 0, 12);
          return h;
        }),
    );
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 6 }), fc.array(fc.nat({ max: 64 }), { maxLength: 8 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames);
        let elements = 0;
        const reader = new FrameReader({
          data: (_round, _offset, b) => {
            assert.equal(b.length % 4, 0, 'a partial element was handed on');
            elements += b.length / 4;
          },
          end: () => {},
          error: (_code, reason) => assert.equal(typeof reason, 'string'),
        });
        let at = 0;
        expectTypedOrValid(() => {
          for (const cut of [...cuts, bytes.length]) {
            const to = Math.min(bytes.length, at + cut);
            reader.push(bytes.subarray(at, to));
            at = to;
          }
        }, [WorkerError]);
        assert.ok(elements * 4 <= bytes.length);
      }),
      FUZZ,
    );
  });

  it('FacenetError is the root of every typed error the parsers above throw', () => {
    for (const t of [StoredRecordError, SpecError, RejectedJobError]) assert.ok(t.prototype instanceof FacenetError, t.name);
  });
});
