import { ConfigError } from '@facenet/core';

/** A team's share of the pool: `nominalRanks` it may always reclaim, `weight` its fair share of what is left over. */
export interface QueueConfig {
  name: string;
  nominalRanks: number;
  weight: number;
}

export const DEFAULT_QUEUE = 'default';
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * Queues from FACENET_QUEUES: `name=nominalRanks:weight` entries separated by commas, e.g.
 * `research=32:4,prod=16:2,batch=0:1`. The `default` queue always exists (nominal 0, weight 1,
 * unless listed): jobs that name no queue go there. A bad entry names itself.
 */
export function parseQueues(text: string | undefined): QueueConfig[] {
  const queues = new Map<string, QueueConfig>([[DEFAULT_QUEUE, { name: DEFAULT_QUEUE, nominalRanks: 0, weight: 1 }]]);
  for (const entry of (text ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const m = /^([^=]+)=(\d{1,5}):(\d{1,4}(?:\.\d{1,3})?)$/.exec(entry);
    if (!m) throw new ConfigError('FACENET_QUEUES', `"${entry}" is not name=nominalRanks:weight (e.g. research=32:4)`);
    const [, name, nominal, weight] = m as unknown as [string, string, string, string];
    if (!NAME.test(name)) throw new ConfigError('FACENET_QUEUES', `queue name "${name}": lower-case letters, digits and '-', at most 63`);
    if (Number(weight) <= 0) throw new ConfigError('FACENET_QUEUES', `queue ${name}: weight must be above 0`);
    queues.set(name, { name, nominalRanks: Number(nominal), weight: Number(weight) });
  }
  return [...queues.values()];
}
