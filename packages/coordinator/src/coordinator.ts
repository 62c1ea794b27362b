import Fastify, { FastifyInstance } from 'fastify';
import IORedis from 'ioredis';
import { randomBytes } from 'node:crypto';
import { evaluationRecordSchema, miningPlanSchema, parseStored, parseStoredList, redisKeys, summarizePlan } from '@facenet/protocol';
import {
  AbortChannel,
  connectRedis,
  logRedisErrors,
  logThrottled,
  redactUrl,
  runCloseSteps,
  DatasetIndexStore,
} from '@facenet/service-kit';
import { hasTokens, isLoopback, loadTokens, registerAccessControl } from './api/access';
import { BackgroundAdmission } from './api/background-admission';
import { cancelJob, newJobRecord, registerRoutes, RouteDeps, submitJob } from './api/routes';
import { SweepRunner } from './sweeps/sweep-runner';
import { SweepStore } from './sweeps/sweep-store';
import { AdmissionClient } from './api/admission';
import { compileCoordinatorOptions, CompiledCoordinatorOptions, CoordinatorOptions } from './coordinator-options';
import { CoordinatorError } from './errors';
import { JobDriver } from './job-driver';
import { JobStore } from './job-store';
import { largestBudget, Membership } from './membership';
import { HistorySegments } from './history-segments';
import { JobArchive } from './job-archive';
import { JobRetention } from './job-retention';
import { createMetrics, Metrics } from './metrics';
import { QueueDepths } from './queue-depths';

export type CoordinatorState = 'INITIALIZED' | 'RUNNING' | 'FAILED' | 'DRAINING' | 'STOPPED';

/**
 * Renews the lock if this coordinator still holds it and Redis still has the epoch it started
 * with. 0: fine; 1: another holds the lock or it expired; 2: the epoch is gone (Redis lost its data).
 */
const RENEW_LOCK = `
if redis.call('get', KEYS[2]) ~= ARGV[2] then return 2 end
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 1 end
redis.call('pexpire', KEYS[1], ARGV[3])
return 0`;

/** Redis must not evict: an evicted inbox, job or queue key is a lost step or checkpoint event. */
export async function checkEvictionPolicy(redis: IORedis): Promise<string> {
  const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
  return reply[1] ?? 'unknown';
}

/**
 * The coordinator process: REST API, scheduler and job driver. Holds a lock in Redis so only
 * one coordinator drives jobs; a restarted one picks running jobs up where the record says.
 */
export class Coordinator {
  readonly options: CompiledCoordinatorOptions;
  state: CoordinatorState = 'INITIALIZED';
  readonly redis: IORedis;
  readonly store: JobStore;
  readonly membership: Membership;
  private readonly metrics: Metrics;
  private readonly queueDepths: QueueDepths;
  private readonly driver: JobDriver;
  private readonly sweepRunner: SweepRunner;
  /** When the sweeps were last advanced (every 2 s: their trials change at evaluations, not steps). */
  private lastTrialPass = 0;
  private readonly app: FastifyInstance;
  private readonly admission: AdmissionClient;
  private readonly lockToken = randomBytes(8).toString('hex');
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private lockTimer: NodeJS.Timeout | undefined;
  private renewing = false;
  private closing: Promise<void> | undefined;
  private epoch = '';
  private lastSweep = 0;
  private readonly retention: JobRetention;
  private readonly admissions: BackgroundAdmission;
  /** Why this coordinator stopped driving (state lost, lock lost). */
  fatal: string | undefined;
  url = '';
  private startError: Error | undefined;

  /**
   * @param onFatal called once when the coordinator stops driving because its Redis state or lock
   * vanished; the process entry exits non-zero so a supervisor restarts it against sound state.
   */
  constructor(
    options: CoordinatorOptions = {},
    private readonly log: (line: string) => void = (l) => console.error(l),
    private readonly onFatal: (reason: string) => void = () => undefined,
  ) {
    this.options = compileCoordinatorOptions(options);
    this.admission = new AdmissionClient(this.options.admissionTimeoutMs);
    this.redis = new IORedis(this.options.redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
    logRedisErrors(this.redis, (l) => this.log(`[coordinator] ${l}`));
    this.store = new JobStore(this.redis, this.options.prefix, this.log, new HistorySegments(this.options.checkpointRoot));
    this.membership = new Membership(this.redis, this.options.prefix);
    this.queueDepths = new QueueDepths(this.redis, this.options.prefix, (l) => this.log(`[coordinator] queue gauges ${l}`));
    this.metrics = createMetrics({
      queueDepths: async () => this.queueDepths.read((await this.membership.alive()).map((w) => w.id)),
      checkpointAges: async () =>
        (await this.store.inStates(['running'])).map((j) => {
          const last = j.checkpoints[j.checkpoints.length - 1];
          return { jobId: j.id, seconds: (Date.now() - Date.parse(last?.createdAt ?? j.createdAt)) / 1000 };
        }),
    });
    this.retention = new JobRetention(this.redis, this.store, this.options.prefix, {
      keepFinished: this.options.keepFinishedJobs,
      maxAgeMs: this.options.finishedJobDays * 86_400_000,
      checkpointRoot: this.options.checkpointRoot,
      log: this.log,
    });
    this.driver = new JobDriver(this.redis, this.store, this.membership, this.metrics, {
      prefix: this.options.prefix,
      checkpointRoot: this.options.checkpointRoot,
      stepTimeoutMs: this.options.stepTimeoutMs,
      maxFaultsPerStep: this.options.maxFaultsPerStep,
      maxStorageFaults: this.options.maxStorageFaults,
      faultSettleMs: this.options.faultSettleMs,
      lateWorkerGraceMs: this.options.lateWorkerGraceMs,
      stateQueryTimeoutMs: this.options.stateQueryTimeoutMs,
      queues: this.options.queues,
      log,
    });
    this.app = Fastify({ logger: false, bodyLimit: 1 << 20 });
    // Checked here, thrown by start() (which reports it in one line): a bad tokens file, or an
    // API beyond loopback that anyone could drive.
    try {
      const tokens = loadTokens(this.options.apiTokensFile || undefined);
      if (!isLoopback(this.options.host) && !hasTokens(tokens) && !this.options.allowOpenApi) {
        throw new CoordinatorError(
          `refusing to serve the API on ${this.options.host} without tokens: anyone who reaches it could drive jobs. Set FACENET_API_TOKENS_FILE (lines 'admin:TOKEN', 'read:TOKEN') or FACENET_API_TOKEN_ADMIN, or FACENET_API_OPEN=1 to run open on purpose`,
        );
      }
      registerAccessControl(this.app, { tokens, host: this.options.host });
    } catch (err) {
      this.startError = err as Error;
    }
    this.admissions = new BackgroundAdmission({
      dataRoots: this.options.dataRoots,
      admission: this.admission,
      workerBudget: async () => largestBudget(await this.membership.alive()) ?? this.options.assumedWorkerBudget,
      stepTimeoutMs: this.options.stepTimeoutMs,
      queues: this.options.queues.map((q) => q.name),
      store: this.store,
      indexes: new DatasetIndexStore(this.redis, this.options.prefix),
      answerMs: this.options.admissionAnswerMs,
      budgetMs: this.options.admissionTimeoutMs,
      log: this.log,
      newJob: (spec, train) => newJobRecord(spec, train),
    });
    const aborts = new AbortChannel(this.redis, redisKeys(this.options.prefix).abortChannel);
    const sweeps = new SweepStore(this.redis, this.options.prefix);
    // The runner submits and cancels trials exactly as the API's routes do.
    this.sweepRunner = new SweepRunner({
      sweeps,
      jobs: this.store,
      evaluations: (id) => routeDeps.evaluations(id),
      submit: async (spec) => (await submitJob(spec, routeDeps)).job,
      cancel: (id) => cancelJob(id, routeDeps),
      log,
      metrics: this.metrics,
    });
    const routeDeps: RouteDeps = {
      store: this.store,
      membership: this.membership,
      metrics: () => this.metrics.registry.metrics(),
      metricsContentType: this.metrics.registry.contentType,
      redisPing: () => this.redis.ping(),
      fatal: () => this.fatal,
      newestPlan: async (jobId) => {
        const keys = redisKeys(this.options.prefix);
        const [v] = await this.redis.zrevrange(keys.plans(jobId), '0', '0');
        const raw = v === undefined ? null : await this.redis.get(keys.plan(jobId, Number(v)));
        return raw ? summarizePlan(parseStored(miningPlanSchema, raw, `mining plan ${jobId}/${v}`)) : null;
      },
      dataRoots: this.options.dataRoots,
      reportRoot: this.options.reportRoot,
      checkpointRoot: this.options.checkpointRoot,
      admission: this.admission,
      indexes: new DatasetIndexStore(this.redis, this.options.prefix),
      workerBudget: async () => largestBudget(await this.membership.alive()) ?? this.options.assumedWorkerBudget,
      stepTimeoutMs: this.options.stepTimeoutMs,
      queues: this.options.queues.map((q) => q.name),
      queueStatus: () => this.driver.queueStatus(),
      interrupt: (job) => aborts.publish({ jobId: job.id, generation: job.generation, interrupt: true }),
      evaluations: async (jobId) =>
        parseStoredList(
          evaluationRecordSchema,
          await this.redis.lrange(redisKeys(this.options.prefix).evaluations(jobId), 0, -1),
          `evaluations of job ${jobId}`,
          (err) => this.log(`[coordinator] ${err.message}; left out`),
        ),
      miner: () => this.registration(redisKeys(this.options.prefix).miner),
      evaluator: () => this.registration(redisKeys(this.options.prefix).evaluator),
      sweeps,
      runner: this.sweepRunner,
      archive: new JobArchive(this.options.checkpointRoot),
      admissions: this.admissions,
    };
    registerRoutes(this.app, routeDeps);
  }

  private async registration(key: string): Promise<unknown> {
    const raw = await this.redis.get(key);
    return raw ? (JSON.parse(raw) as unknown) : null;
  }

  async start(): Promise<string> {
    if (this.startError) throw this.startError;
    await connectRedis(this.redis, this.options.redisUrl);
    const policy = await checkEvictionPolicy(this.redis);
    if (policy !== 'noeviction') {
      const msg = `Redis maxmemory-policy is '${policy}': the cluster needs 'noeviction' or it can silently lose queued steps (CONFIG SET maxmemory-policy noeviction)`;
      if (this.options.requireNoeviction) throw new CoordinatorError(msg);
      this.log(`[coordinator] WARNING: ${msg}`);
    }
    const lockKey = redisKeys(this.options.prefix).coordinatorLock;
    const got = await this.redis.set(lockKey, this.lockToken, 'PX', this.options.lockMs, 'NX');
    if (!got)
      throw new CoordinatorError(
        `another coordinator holds ${lockKey} (it expires ${this.options.lockMs / 1000} s after that coordinator stops)`,
      );
    const epochKey = redisKeys(this.options.prefix).epoch;
    await this.redis.set(epochKey, `${new Date().toISOString()} ${this.lockToken}`, 'NX');
    this.epoch = (await this.redis.get(epochKey)) ?? '';
    const indexed = await this.store.indexOlderRecords();
    if (indexed) this.log(`[coordinator] indexed ${indexed} job record(s) written before the state index`);
    await this.admissions.resume();
    this.metrics.stateLost.set(0);
    this.url = await this.app.listen({ host: this.options.host, port: this.options.port });
    this.lockTimer = setInterval(() => void this.renewLock(), Math.min(this.options.tickMs, this.options.lockMs / 3));
    this.timer = setInterval(() => void this.tick(), this.options.tickMs);
    this.state = 'RUNNING';
    this.log(
      `[coordinator] ready: API at ${this.url}/v1, Redis ${redactUrl(this.options.redisUrl)} (prefix ${this.options.prefix}), checkpoints in ${this.options.checkpointRoot}`,
    );
    return this.url;
  }

  /**
   * Renews the lock on its own timer: a scheduler tick may wait on workers (a state survey, a
   * checkpoint written for a joiner) far longer than the lock lives.
   */
  private async renewLock(): Promise<void> {
    if (this.renewing || this.state !== 'RUNNING') return;
    this.renewing = true;
    try {
      const keys = redisKeys(this.options.prefix);
      const held = Number(
        await this.redis.eval(RENEW_LOCK, 2, keys.coordinatorLock, keys.epoch, this.lockToken, this.epoch, this.options.lockMs),
      );
      if (held === 2)
        this.stopDriving(
          `Redis lost this coordinator's state: the key ${keys.epoch} written at start is gone (was Redis restarted without persistence, or flushed?). Jobs recorded there are lost; run Redis with AOF (appendonly yes) and noeviction`,
        );
      if (held === 1)
        this.stopDriving(
          `lost the coordinator lock ${keys.coordinatorLock} (another coordinator took it, or it expired while this one could not reach Redis); stopping so two never drive the same jobs`,
        );
    } catch (err) {
      logThrottled(this.log, `[coordinator] lock renewal: ${(err as Error).message}`);
    } finally {
      this.renewing = false;
    }
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.state !== 'RUNNING') return;
    this.ticking = true;
    try {
      await this.driver.tick();
      if (Date.now() - this.lastTrialPass > 2000) {
        this.lastTrialPass = Date.now();
        await this.sweepRunner.tick();
      }
      if (Date.now() - this.lastSweep > 60_000) {
        this.lastSweep = Date.now();
        await this.retention.sweep();
      }
    } catch (err) {
      logThrottled(this.log, `[coordinator] scheduler: ${(err as Error).message}`);
    } finally {
      this.ticking = false;
    }
  }

  /** Stops driving jobs at once and loudly: logs, metric, /healthz 503, then onFatal. */
  private stopDriving(reason: string): void {
    if (this.fatal) return;
    this.fatal = reason;
    this.state = 'FAILED';
    clearInterval(this.timer);
    clearInterval(this.lockTimer);
    this.driver.halt();
    this.metrics.stateLost.set(1);
    this.log(`[coordinator] FATAL: ${reason}`);
    this.onFatal(reason);
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.state = 'DRAINING';
    const lockKey = redisKeys(this.options.prefix).coordinatorLock;
    const steps: [string, () => Promise<unknown>][] = [
      [
        'stop scheduler',
        async () => {
          clearInterval(this.timer);
          clearInterval(this.lockTimer);
        },
      ],
      ['close API', () => this.app.close()],
      [
        'stop admission thread',
        async () => {
          this.admissions.close();
          await this.admission.close();
        },
      ],
      ['stop driver', () => this.driver.close()],
      ['close queue gauges', () => this.queueDepths.close()],
      [
        'release lock',
        async () => {
          if ((await this.redis.get(lockKey)) === this.lockToken) await this.redis.del(lockKey);
        },
      ],
      ['close redis', () => this.redis.quit()],
    ];
    await runCloseSteps(steps, (l) => this.log(`[coordinator] ${l}`));
    this.state = 'STOPPED';
  }
}
