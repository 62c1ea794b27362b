import { strict as assert } from 'node:assert';
import { canTransition, JobStateError, transition, TRANSITIONS } from '@facenet/coordinator';
import type { JobRecord, JobState } from '@facenet/protocol';

const STATES: JobState[] = ['pending', 'running', 'paused', 'completed', 'failed', 'cancelled'];
const job = (state: JobState) => ({ id: 'j', state, world: [{ workerId: 'w', address: 'a' }], error: 'old' }) as unknown as JobRecord;

describe('job lifecycle: one table of allowed transitions', () => {
  it('allows exactly the table and refuses the rest with a 409 naming the job and state', () => {
    for (const [event, t] of Object.entries(TRANSITIONS)) {
      for (const from of STATES) {
        const j = job(from);
        const e = event as keyof typeof TRANSITIONS;
        if (t.from.includes(from)) {
          assert.ok(canTransition(from, e));
          assert.equal(transition(j, e).state, t.to);
        } else {
          assert.ok(!canTransition(from, e));
          assert.throws(
            () => transition(j, e),
            (err: JobStateError) => err instanceof JobStateError && err.status === 409 && err.message.includes(`a ${from} job`),
          );
          assert.equal(j.state, from, 'a refused transition changes nothing');
        }
      }
    }
  });

  it('finished jobs only leave by resume; a waiting or failed job gives up its world, a completed one keeps it for the record; fail records why and resume clears it', () => {
    for (const s of ['completed', 'failed', 'cancelled'] as JobState[]) {
      const ways = Object.keys(TRANSITIONS).filter((e) => canTransition(s, e as keyof typeof TRANSITIONS));
      assert.deepEqual(ways, ['resume']);
    }
    assert.deepEqual(transition(job('running'), 'wait').world, []);
    assert.equal(transition(job('running'), 'complete').world.length, 1);
    const failed = transition(job('running'), 'fail', 'step 3 failed 4 times');
    assert.equal(failed.error, 'step 3 failed 4 times');
    assert.equal(transition(failed, 'resume').error, undefined);
  });
});
