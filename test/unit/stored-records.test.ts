import { strict as assert } from 'node:assert';
import {
  abortMessageSchema,
  evaluationRecordSchema,
  jobRecordSchema,
  parseStored,
  parseStoredList,
  StoredRecordError,
  workerInfoSchema,
} from '@facenet/protocol';
import type { StepRecord } from '@facenet/protocol';
import { storedJob, storedStep } from '../helpers';

describe('stored records: parsed and upgraded in one place', () => {
  it('a record as the coordinator writes it reads back equal', () => {
    const job = storedJob('job-a', 'running');
    assert.deepEqual(parseStored(jobRecordSchema, JSON.stringify(job), 'job job-a'), job);
  });

  it('upgrades an older record: spec options added since take their defaults, highWater is the step, step records gain the classification fields', () => {
    const old = JSON.parse(JSON.stringify(storedJob('job-old', 'completed'))) as Record<string, unknown>;
    const spec = old.spec as Record<string, unknown>;
    delete spec.allreduce; // jobs stored before the option
    delete old.highWater;
    old.step = 7;
    // A step record from before the classification term: neither field, and a NaN loss (JSON's null).
    const last: Partial<StepRecord> = storedStep(6, 0);
    delete last.classificationLoss;
    delete last.classificationAccuracy;
    old.last = { ...last, loss: null };
    old.addedByANewerCoordinator = { kept: true };
    const job = parseStored(jobRecordSchema, JSON.stringify(old), 'job job-old');
    assert.deepEqual(job.spec.allreduce, { compression: 'none', algorithm: 'auto' });
    assert.equal(job.highWater, 7);
    assert.equal(job.last?.classificationLoss, 0);
    assert.ok(Number.isNaN(job.last?.loss));
    // Loose: what a newer process wrote survives an older one's read-modify-write.
    assert.deepEqual((job as unknown as Record<string, unknown>).addedByANewerCoordinator, { kept: true });
  });

  it('names the record and the field that is wrong, and what is not JSON', () => {
    const bad = { ...storedJob('job-b', 'running'), state: 'exploded' };
    assert.throws(
      () => parseStored(jobRecordSchema, JSON.stringify(bad), 'job job-b'),
      (err: Error) => err instanceof StoredRecordError && /stored job job-b is malformed: state:/.test(err.message),
    );
    const noWorld = { ...storedJob('job-c', 'running'), world: 'everyone' };
    assert.throws(() => parseStored(jobRecordSchema, JSON.stringify(noWorld), 'job job-c'), /job job-c is malformed: world:/);
    assert.throws(() => parseStored(jobRecordSchema, '{"id": "job-d", ', 'job job-d'), /job job-d is malformed: not JSON/);
  });

  it('a list leaves out and reports the entries that do not parse, keeping the rest', () => {
    const good = {
      jobId: 'j',
      step: 10,
      checkpointDir: '/c/step-000010',
      set: 'holdout',
      pairs: 600,
      folds: 10,
      accuracy: 0.8,
      accuracyStd: 0.02,
      val: 0.3,
      valStd: 0.05,
      far: 0.001,
      farTarget: 0.001,
      auc: 0.9,
      threshold: 1.1,
      droppedPairs: 0,
      skippedImages: 0,
      seconds: 3,
      at: '2026-12-05T00:00:00.000Z',
    };
    const skipped: string[] = [];
    const list = parseStoredList(
      evaluationRecordSchema,
      [JSON.stringify(good), 'garbage', JSON.stringify({ ...good, step: 'ten' }), JSON.stringify({ ...good, step: 20 })],
      'evaluations of job j',
      (err) => skipped.push(err.message),
    );
    assert.deepEqual(
      list.map((e) => e.step),
      [10, 20],
    );
    assert.equal(skipped.length, 2);
    assert.match(skipped[0]!, /evaluations of job j \[1\] is malformed: not JSON/);
    assert.match(skipped[1]!, /evaluations of job j \[2\] is malformed: step:/);
  });

  it('checks what other processes publish or register: abort messages and worker registrations', () => {
    assert.deepEqual(parseStored(abortMessageSchema, '{"jobId":"j","generation":3}', 'abort message'), { jobId: 'j', generation: 3 });
    assert.throws(() => parseStored(abortMessageSchema, '{"jobId":"j"}', 'abort message'), /generation/);
    const w = { id: 'w1', address: '10.0.0.1:7000', host: 'n1', pid: 12, backend: 'wasm', startedAt: 'now' };
    assert.deepEqual(parseStored(workerInfoSchema, JSON.stringify(w), 'worker w1'), w);
    assert.throws(() => parseStored(workerInfoSchema, JSON.stringify({ ...w, pid: 'twelve' }), 'worker w1'), /worker w1 is malformed: pid/);
  });
});
