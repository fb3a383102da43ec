// The worker role: the BullMQ rotation jobs (renewal-window sweep, hints, grace supersession). `enrolld worker` runs it
// alone next to an API started with JOBS=off; `enrolld up` runs it in-process with JOBS=in-process. It needs the
// database and the issuing CA (a supersession rebuilds the CRL), never the broker: hints reach brokers through
// Postgres NOTIFY, revocations through NOTIFY and the sequence resync.
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config.js';
import { createJobMetrics } from '../jobs/job-metrics.js';
import { createJobRuntime, type JobRuntime, type JobRuntimeOptions } from '../jobs/job-runtime.js';
import { BULK_REVOKE_QUEUE, createRotationProcessor, ROTATION_QUEUE } from '../jobs/rotation-jobs.js';
import { createRegistry } from '../metrics.js';
import { buildOnDatabase } from './database.js';
import { prepareEnvironments } from './environments.js';
import { readHomeCa } from './pki-home.js';
import { buildUseCases, type UseCases } from './use-cases.js';

/** Finished jobs are kept this long, so a hint's job id stays taken while the sweep could still find its serial. */
const KEEP_COMPLETED_SECONDS = 24 * 3600;

/** Default BullMQ prefix: one per database, so two deployments (or two test runs) on one Redis never share a queue. */
export function defaultJobsPrefix(databaseUrl: string): string {
  let identity = databaseUrl;
  try {
    const u = new URL(databaseUrl);
    identity = `${u.hostname}:${u.port}${u.pathname}`; // never the password
  } catch {
    // not a URL: hash it as it is
  }
  return `enrolld-${createHash('sha256').update(identity).digest('hex').slice(0, 12)}`;
}

export function jobRuntimeOptions(config: Readonly<Config>, databaseUrl: string): JobRuntimeOptions {
  const rotation = config.rotation;
  return {
    redisUrl: config.redisUrl,
    prefix: rotation.jobsPrefix ?? defaultJobsPrefix(databaseUrl),
    runWorkers: true,
    sweepIntervalMs: rotation.sweepIntervalSeconds * 1000,
    supersedeIntervalMs: rotation.supersedeCheckIntervalMs,
    concurrency: rotation.jobConcurrency,
    bulkConcurrency: config.revocation.bulkConcurrency,
    lockDurationMs: rotation.jobLockDurationMs,
    stalledIntervalMs: rotation.jobStalledIntervalMs,
    keepCompletedSeconds: KEEP_COMPLETED_SECONDS,
  };
}

export interface WorkerRoleDeps {
  config: Readonly<Config>;
  logger: Logger;
  registry: Registry;
  databaseUrl: string;
  useCases: Pick<UseCases, 'sweep' | 'lineage' | 'bulkRevocation' | 'jobRequests'>;
}

export interface WorkerRole {
  jobs: JobRuntime;
  /** Starts the workers in the background: Redis being down never blocks a start. */
  listen(): void;
  stop(): Promise<void>;
}

export function buildWorkerRole(deps: WorkerRoleDeps): WorkerRole {
  let jobs: JobRuntime | undefined;
  const metrics = createJobMetrics(deps.registry, () =>
    jobs ? [ROTATION_QUEUE, BULK_REVOKE_QUEUE].map((queue) => ({ queue, counts: () => jobs!.counts(queue) })) : [],
  );
  jobs = createJobRuntime({
    options: jobRuntimeOptions(deps.config, deps.databaseUrl),
    logger: deps.logger,
    metrics,
    requests: deps.useCases.jobRequests,
    onWorkersReady: () => deps.useCases.bulkRevocation.resumeUnfinished(),
    process: createRotationProcessor({
      sweep: deps.useCases.sweep,
      lineage: deps.useCases.lineage,
      bulkRevocation: deps.useCases.bulkRevocation,
      enqueue: { addHints: (hints) => jobs!.enqueue.addHints(hints) },
      onHintSent: () => metrics.hintSent(),
      onSuperseded: (n) => metrics.superseded(n),
    }),
  });
  const runtime = jobs;
  return {
    jobs: runtime,
    listen: () => runtime.start(),
    stop: () => runtime.stop(),
  };
}

/**
 * The producer side of the job queue for a process without workers (`enrolld api`, `enrolld up` with JOBS=off): the
 * bulk revocations its API starts are queued for an `enrolld worker`.
 */
export function buildJobProducer(deps: Omit<WorkerRoleDeps, 'useCases'> & { useCases: Pick<UseCases, 'jobRequests'> }): WorkerRole {
  const jobs = createJobRuntime({
    options: { ...jobRuntimeOptions(deps.config, deps.databaseUrl), runWorkers: false },
    logger: deps.logger,
    metrics: createJobMetrics(deps.registry, () => []),
    requests: deps.useCases.jobRequests,
    process: () => Promise.reject(new Error('this process runs no job workers')),
  });
  return { jobs, listen: () => jobs.start(), stop: () => jobs.stop() };
}

export interface BuiltWorker {
  jobs: JobRuntime;
  jobsPrefix: string;
  listen(): void;
  stop(): Promise<void>;
}

/** `enrolld worker`: the jobs alone, over the DATABASE_URL of the API. */
export async function buildWorker(config: Readonly<Config>, logger: Logger, signal?: AbortSignal): Promise<BuiltWorker> {
  const options = { config, logger, applicationName: 'enrolld-worker', poolMax: config.roleDbPoolMax, allowEmbedded: false, signal };
  return buildOnDatabase(options, async (database) => {
    // A supersession rebuilds the CRL of its certificate's environment: the worker reads every environment's issuing CA.
    const environments = await prepareEnvironments(config, logger, database.pool, await readHomeCa(config.home), { recordDefault: false });
    const registry = createRegistry();
    const useCases = buildUseCases({ config, pool: database.pool, revocationPool: database.revocationPool, ...environments, logger, registry });
    const worker = buildWorkerRole({ config, logger, registry, databaseUrl: database.url, useCases });
    return { jobs: worker.jobs, jobsPrefix: jobRuntimeOptions(config, database.url).prefix, listen: () => worker.listen(), stop: () => worker.stop() };
  });
}
