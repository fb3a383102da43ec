// BullMQ on Redis for the rotation queue and the bulk revocation queue (docs/architecture.md §7a, §8). Redis is optional for the service: if it is down at start or
// later, enrollment, renewal and revocation go on; this runtime logs, keeps retrying in the background, and the
// scheduled sweep resumes when Redis is back (the schedulers are re-upserted on every reconnect, since a Redis that
// restarted empty has lost them). Nothing here blocks startup or shutdown on Redis.
// The queue and worker are created only once Redis has answered a PING: BullMQ objects built on a connection that
// failed its first connect stay closed after Redis returns ("Connection is closed", seen here with bullmq 6.7).
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { JobRequestRelay } from '@enrolld/core/events/job-request-relay.js';
import type { JobMetrics } from './job-metrics.js';
import { BULK_REVOKE_QUEUE, bulkRevokeJobId, hintJobId, ROTATION_QUEUE, type HintEnqueuer, type RotationJob, type RotationJobResult } from './rotation-jobs.js';

export interface JobRuntimeOptions {
  redisUrl: string;
  /** BullMQ key prefix: deployments (and tests) sharing one Redis keep apart by it. */
  prefix: string;
  /** Run workers in this process (false: only the producer side, e.g. `enrolld up` next to `enrolld worker`). */
  runWorkers: boolean;
  sweepIntervalMs: number;
  supersedeIntervalMs: number;
  concurrency: number;
  /** Bulk revocations run on a queue of their own with this many at once, so a large one never delays rotation jobs. */
  bulkConcurrency: number;
  /** BullMQ lock; a job whose worker stops renewing it for this long is stalled and runs again (FLT-06). */
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** Keep finished jobs this long, so a hint job id stays taken while the sweep could still find its serial. */
  keepCompletedSeconds: number;
}

export interface JobRuntimeDeps {
  options: JobRuntimeOptions;
  logger: Logger;
  metrics: JobMetrics;
  process: (job: RotationJob) => Promise<RotationJobResult>;
  /** Jobs the use cases ask for (bulk revocations), queued while this runtime holds a queue. */
  requests?: JobRequestRelay | undefined;
  /** Once the workers run: queue again what a previous process left unfinished. */
  onWorkersReady?: (() => Promise<unknown>) | undefined;
}

const CLOSE_TIMEOUT_MS = 3000;
/** How long sweepNow waits for the sweep it queued to finish, e.g. while only an `enrolld worker` elsewhere runs it. */
const SWEEP_WAIT_TIMEOUT_MS = 60_000;

async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

export function createJobRuntime(deps: JobRuntimeDeps) {
  const { options, metrics } = deps;
  const log = deps.logger.child({ component: 'jobs', queue: ROTATION_QUEUE });
  let connection: Redis | undefined;
  let queue: Queue | undefined;
  let worker: Worker | undefined;
  let bulkQueue: Queue | undefined;
  let bulkWorker: Worker | undefined;
  let stopped = false;
  let lastErrorLogAt = 0;
  let everReady = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let connecting: Promise<void> | undefined;
  let detachRequests: (() => void) | undefined;
  /** Completion events for sweepNow, opened on its first call (QueueEvents blocks on its own connection). */
  let events: { queueEvents: QueueEvents; connection: Redis } | undefined;

  function logUnavailable(error: Error): void {
    // One line per 30 s: an outage must not flood the log.
    const now = Date.now();
    if (now - lastErrorLogAt >= 30_000) {
      lastErrorLogAt = now;
      log.warn({ err: error.message, redisUrl: redactUrl(options.redisUrl) }, 'Redis unavailable: background jobs paused, enrollment and revocation unaffected');
    }
  }

  /** Resolves once Redis answers a PING (or the runtime is stopped); retries with backoff up to 5 s. */
  async function untilReachable(): Promise<void> {
    for (let attempt = 0; !stopped; attempt++) {
      const probe = new Redis(options.redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
      probe.on('error', logUnavailable);
      try {
        await probe.connect();
        await probe.ping();
        // QUIT, not disconnect(): ioredis' disconnect() arms a 2 s timer that keeps the process alive if the socket
        // lingers.
        await probe.quit().catch(() => probe.disconnect(false));
        return;
      } catch (error) {
        logUnavailable(error as Error);
        probe.disconnect(false);
      }
      await new Promise<void>((resolve) => {
        retryTimer = setTimeout(resolve, Math.min(250 * 2 ** attempt, 5000));
      });
    }
  }

  function redisConnection(): Redis {
    const redis = new Redis(options.redisUrl, {
      // BullMQ workers block on Redis and require this (its docs); the queue side shares the connection.
      maxRetriesPerRequest: null,
      // Reconnect forever, backing off to 5 s: the sweep resumes by itself when Redis returns.
      retryStrategy: (times) => Math.min(250 * times, 5000),
      connectionName: 'enrolld-jobs',
    });
    redis.on('error', logUnavailable);
    redis.on('ready', () => {
      metrics.redisUp(true);
      log.info({ redisUrl: redactUrl(options.redisUrl), reconnect: everReady }, 'Redis ready: background jobs running');
      everReady = true;
      void upsertSchedulers();
    });
    redis.on('close', () => metrics.redisUp(false));
    return redis;
  }

  async function upsertSchedulers(): Promise<void> {
    if (!queue || stopped || !options.runWorkers) return;
    try {
      // Idempotent by scheduler id: every process and every reconnect may call it (BullMQ job schedulers).
      await queue.upsertJobScheduler('rotation-sweep', { every: options.sweepIntervalMs }, { name: 'sweep', opts: { removeOnComplete: 100, removeOnFail: 100 } });
      await queue.upsertJobScheduler('rotation-supersede', { every: options.supersedeIntervalMs }, { name: 'supersede', opts: { removeOnComplete: 100, removeOnFail: 100 } });
    } catch (error) {
      if (!stopped) log.warn({ err: (error as Error).message }, 'could not schedule the rotation sweep yet; will retry when Redis is ready');
    }
  }

  const enqueue: HintEnqueuer = {
    async addHints(hints) {
      if (!queue || hints.length === 0) return;
      await queue.addBulk(
        hints.map((h) => ({
          name: 'hint',
          data: { serial: h.serial, deviceId: h.deviceId },
          opts: {
            jobId: hintJobId(h.serial),
            delay: h.delayMs,
            attempts: 5,
            backoff: { type: 'exponential', delay: 1000 },
            removeOnComplete: { age: options.keepCompletedSeconds },
            removeOnFail: { age: options.keepCompletedSeconds },
          },
        })),
      );
    },
  };

  return {
    enqueue,

    /** Returns at once; connecting, scheduling and working happen in the background. */
    start(): void {
      stopped = false;
      connecting = (async () => {
        await untilReachable();
        if (!stopped) build();
      })().catch((error: unknown) => log.error({ err: error }, 'job runtime failed to start'));
    },

    /** Job counts for /metrics. */
    counts(queueName: string = ROTATION_QUEUE): Promise<Record<string, number>> {
      const q = queueName === BULK_REVOKE_QUEUE ? bulkQueue : queue;
      if (!q || connection?.status !== 'ready') return Promise.reject(new Error('Redis not ready'));
      return q.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
    },

    /**
     * Runs a sweep now, as a job (tests, and an operator who does not want to wait for the schedule); resolves when
     * that job has completed, rejects when it failed, when Redis is not reachable, or when the connection drops while
     * waiting.
     */
    async sweepNow(): Promise<void> {
      const q = queue;
      const conn = connection;
      if (!q || conn?.status !== 'ready') throw new Error('cannot run the rotation sweep now: Redis is unreachable (job runtime not ready)');
      events ??= openEvents();
      const { queueEvents } = events;
      let onClose: (() => void) | undefined;
      const connectionLost = new Promise<never>((_, reject) => {
        onClose = () => reject(new Error('the rotation sweep may not have finished: the Redis connection closed while waiting for it'));
        conn.once('close', onClose);
      });
      const run = async () => {
        await queueEvents.waitUntilReady();
        const job = await q.add('sweep', {}, { removeOnComplete: 100, removeOnFail: 100 });
        await job.waitUntilFinished(queueEvents, SWEEP_WAIT_TIMEOUT_MS);
      };
      try {
        await Promise.race([run(), connectionLost]);
      } finally {
        conn.off('close', onClose!);
      }
    },

    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(retryTimer);
      await connecting;
      detachRequests?.();
      detachRequests = undefined;
      const w = worker;
      const q = queue;
      const bw = bulkWorker;
      const bq = bulkQueue;
      const c = connection;
      const e = events;
      worker = undefined;
      queue = undefined;
      bulkWorker = undefined;
      bulkQueue = undefined;
      connection = undefined;
      events = undefined;
      // Finish running jobs if Redis lets us; never wait on a Redis that is gone.
      await Promise.all([w, bw].map((x) => x && within(x.close(), CLOSE_TIMEOUT_MS)));
      if (e) await within(e.queueEvents.close(), CLOSE_TIMEOUT_MS);
      await Promise.all([q, bq].map((x) => x && within(x.close(), CLOSE_TIMEOUT_MS)));
      for (const redis of [e?.connection, c]) {
        if (!redis) continue;
        redis.removeAllListeners('ready');
        if (redis.status === 'ready') await within(redis.quit(), 500);
        if (redis.status !== 'end') redis.disconnect(false);
      }
      metrics.redisUp(false);
    },
  };

  /** QueueEvents reads the events stream with blocking XREAD, so it gets a connection of its own (BullMQ docs). */
  function openEvents(): { queueEvents: QueueEvents; connection: Redis } {
    const redis = new Redis(options.redisUrl, {
      maxRetriesPerRequest: null,
      retryStrategy: (times) => Math.min(250 * times, 5000),
      connectionName: 'enrolld-jobs-events',
    });
    redis.on('error', logUnavailable);
    const queueEvents = new QueueEvents(ROTATION_QUEUE, { connection: redis, prefix: options.prefix });
    queueEvents.on('error', () => undefined); // reported once by the connection's handler
    return { queueEvents, connection: redis };
  }

  /** Queues, workers and their event wiring, on a connection to a Redis that just answered. */
  function build(): void {
    connection = redisConnection();
    const conn = connection;
    queue = new Queue(ROTATION_QUEUE, { connection: conn, prefix: options.prefix });
    queue.on('error', () => undefined); // reported once by the connection's handler
    bulkQueue = new Queue(BULK_REVOKE_QUEUE, { connection: conn, prefix: options.prefix });
    bulkQueue.on('error', () => undefined);
    const bq = bulkQueue;
    detachRequests = deps.requests?.consume(async (job) => {
      await bq.add(job.name, { id: job.id }, {
        jobId: bulkRevokeJobId(job.id),
        attempts: 5,
        backoff: { type: 'exponential', delay: 1000 },
        removeOnComplete: { age: options.keepCompletedSeconds },
        removeOnFail: { age: options.keepCompletedSeconds },
      });
    });
    if (options.runWorkers) {
      worker = startWorker(ROTATION_QUEUE, conn, options.concurrency);
      bulkWorker = startWorker(BULK_REVOKE_QUEUE, conn, options.bulkConcurrency);
      deps.onWorkersReady?.().catch((error: unknown) => log.warn({ err: (error as Error).message }, 'could not queue unfinished jobs again yet'));
    }
  }

  function startWorker(queueName: string, conn: Redis, concurrency: number): Worker {
    const w = new Worker(queueName, (job: Job) => deps.process({ name: job.name, data: job.data as unknown }), {
      connection: conn,
      prefix: options.prefix,
      concurrency,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: 1,
    });
    w.on('error', () => undefined);
    w.on('completed', (job: Job) => metrics.finished(queueName, job.name, 'completed'));
    w.on('failed', (job: Job | undefined, error: Error) => {
      metrics.finished(queueName, job?.name ?? 'unknown', 'failed');
      log.error({ err: error, queue: queueName, job: job?.name, jobId: job?.id, attempts: job?.attemptsMade }, 'background job failed');
    });
    w.on('stalled', (jobId: string) => {
      metrics.stalled(queueName);
      log.warn({ queue: queueName, jobId }, 'background job stalled; it runs again (its effects are idempotent)');
    });
    return w;
  }
}

export type JobRuntime = ReturnType<typeof createJobRuntime>;

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://?';
  }
}
