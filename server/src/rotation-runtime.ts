// Composition for rotation (DESIGN.md §1 composition, §4; issue 5): the renewal use case behind REST, EST and MQTT,
// lineage (supersede on first connect or after the grace period), the renewal-window sweep on BullMQ, and the feed
// that carries hints and renewals from Postgres to the broker. Used by `enrolld up` and `enrolld worker`.
import { createHash, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type pg from 'pg';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { createPgRenewalStore, createPgRotationListener, createPool, migrate } from '@enrolld/db';
import type { Config } from './config.js';
import { createIssuingCa } from '@enrolld/core/ca/index.js';
import type { IssuingCa } from '@enrolld/core/ca/types.js';
import { systemClock } from '@enrolld/core/clock.js';
import type { Enrollment } from '@enrolld/core/enroll.js';
import { createEstEnrollment } from '@enrolld/core/renewal/est-enrollment.js';
import { createLineage, type Lineage, type LineageRevoker } from '@enrolld/core/renewal/lineage.js';
import type { RenewalStore, RotationStore, TokenDeviceLookup } from '@enrolld/core/renewal/ports.js';
import { createRenewal, type Renewal } from '@enrolld/core/renewal/renewal.js';
import { createRotationSweep } from '@enrolld/core/renewal/rotation-sweep.js';
import { estRoutes } from './http/est/est-routes.js';
import { renewRoutes } from './http/renew-routes.js';
import { createJobMetrics } from './jobs/job-metrics.js';
import { createJobRuntime, defaultJobRuntimeOptions, type JobRuntime, type JobRuntimeOptions } from './jobs/job-runtime.js';
import { createRotationProcessor } from './jobs/rotation-jobs.js';
import type { BrokerHooks } from './mqtt/broker.js';
import { createRenewalTopic, type RenewalTopicOutbound } from './mqtt/renewal-topic.js';
import { classifyInfrastructureError } from './infrastructure-errors.js';
import { pkiPaths } from './pki-home.js';
import { createRevocationRuntime } from './revocation-runtime.js';

export interface RotationRuntimeDeps {
  pool: pg.Pool;
  databaseUrl: string;
  ca: IssuingCa;
  logger: Logger;
  registry: Registry;
  config: Readonly<Config>;
  revoker: LineageRevoker;
  /** For EST simpleenroll; absent in `enrolld worker`. */
  enrollment?: Pick<Enrollment, 'enroll'>;
  /** Run the BullMQ workers here (`enrolld up` with JOBS=in-process, and `enrolld worker`). */
  runWorkers: boolean;
  /** Test and tuning overrides for the job runtime. */
  jobOptions?: Partial<JobRuntimeOptions>;
}

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

export function createRotationRuntime(deps: RotationRuntimeDeps) {
  const { config, logger, registry } = deps;
  const rotation = config.rotation;
  const log = logger.child({ component: 'rotation' });
  const pgStore = createPgRenewalStore(deps.pool);
  // The composition checks that db's shapes satisfy the ports core declares.
  const store: RenewalStore & RotationStore & TokenDeviceLookup = pgStore;

  const renewals = new Counter({
    name: 'enrolld_renewals_total',
    help: 'Renewal requests by transport (rest, est, mqtt) and outcome (issued, replayed, rejected, failed)',
    labelNames: ['transport', 'outcome'],
    registers: [registry],
  });
  const renewalSeconds = new Histogram({
    name: 'enrolld_renewal_duration_seconds',
    help: 'Time from request to answer for renewals, by transport and outcome',
    labelNames: ['transport', 'outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const superseded = new Counter({
    name: 'enrolld_rotation_superseded_total',
    help: 'Predecessors revoked as superseded, by trigger (first-connect, grace)',
    labelNames: ['trigger'],
    registers: [registry],
  });

  const lineage: Lineage = createLineage({
    store,
    revoker: deps.revoker,
    clock: systemClock,
    logger: log,
    graceSeconds: rotation.supersedeGraceSeconds,
    onSuperseded: (trigger) => superseded.inc({ trigger }),
  });

  const renewal: Renewal = createRenewal({
    store,
    ca: deps.ca,
    clock: systemClock,
    policy: {
      certificateLifetimeSeconds: config.certificateLifetimeSeconds,
      backdateSeconds: config.backdateSeconds,
      inFlightSeconds: 10,
      waitForInFlightMs: 3000,
      expired: rotation.expired,
      popLinking: rotation.estPopLinking,
    },
    onRenewed: (entry) => lineage.noteRenewal(entry),
    onOutcome: (transport, outcome, seconds) => {
      renewals.inc({ transport, outcome });
      renewalSeconds.observe({ transport, outcome }, seconds);
    },
  });

  const topic = createRenewalTopic({ renewal, lineage, logger, registry, classifyError: classifyInfrastructureError });

  const sweep = createRotationSweep({
    store,
    policy: {
      windowFraction: rotation.renewalWindowFraction,
      jitterMaxMs: rotation.hintJitterSeconds * 1000,
      jitterShareOfRemaining: 0.25,
      batchSize: 1000,
    },
  });
  let jobs: JobRuntime | undefined;
  const jobMetrics = createJobMetrics(registry, () => (jobs ? [{ queue: 'rotation', counts: () => jobs!.counts() }] : []));
  jobs = createJobRuntime({
    options: {
      ...defaultJobRuntimeOptions,
      redisUrl: config.redisUrl,
      prefix: rotation.jobsPrefix ?? defaultJobsPrefix(deps.databaseUrl),
      runWorkers: deps.runWorkers,
      sweepIntervalMs: rotation.sweepIntervalSeconds * 1000,
      supersedeIntervalMs: Math.min(60_000, Math.max(1000, (rotation.supersedeGraceSeconds * 1000) / 4)),
      ...deps.jobOptions,
    },
    logger,
    metrics: jobMetrics,
    process: createRotationProcessor({
      sweep,
      lineage,
      enqueue: { addHints: (hints) => jobs!.enqueue.addHints(hints) },
      onHintSent: () => jobMetrics.hintSent(),
      onSuperseded: (n) => jobMetrics.superseded(n),
    }),
  });

  const feed = createPgRotationListener({ connectionString: deps.databaseUrl, applicationName: 'enrolld-rotation-listen' });
  let feedStarted = false;

  const publicRouters = [renewRoutes({ renewal })];
  if (deps.enrollment) {
    publicRouters.push(
      estRoutes({
        renewal,
        enrollment: createEstEnrollment({ enrollment: deps.enrollment, tokens: store, popLinking: rotation.estPopLinking }),
        chainPem: deps.ca.chainPem,
        popLinking: rotation.estPopLinking,
        logger,
      }),
    );
  }

  return {
    renewal,
    lineage,
    topic,
    jobs,
    publicRouters,

    /** Wires an in-process broker: replies and hints go out through it. */
    attachBroker(broker: RenewalTopicOutbound & { addHooks(...hooks: BrokerHooks[]): void }): void {
      topic.attach(broker);
      broker.addHooks(topic.hooks);
    },

    /** Loads pending lineage, listens for hints and renewals, starts the jobs in the background (never waits on Redis). */
    async start(options: { listen?: boolean } = {}): Promise<void> {
      const loaded = await lineage.load();
      if (loaded > 0) log.info({ pending: loaded }, 'successors waiting to supersede their predecessor');
      if (options.listen ?? true) {
        await feed.start({
          onHint: (hint) => topic.deliverHint(hint),
          onRenewal: (entry) => lineage.noteRenewal(entry),
          onConnection: (connected, error) => {
            if (connected) {
              // Renewals issued while the feed was down are in the store: reload them (the map is idempotent).
              void lineage.load().catch((err: unknown) => log.warn({ err }, 'reloading pending supersessions failed'));
            } else {
              log.warn({ err: error instanceof Error ? error.message : String(error) }, 'rotation feed lost; reconnecting');
            }
          },
        });
        feedStarted = true;
      }
      jobs!.start();
    },

    async stop(): Promise<void> {
      await jobs!.stop();
      if (feedStarted) await feed.stop();
      feedStarted = false;
    },
  };
}

export type RotationRuntime = ReturnType<typeof createRotationRuntime>;

/**
 * `enrolld worker`: the BullMQ workers alone (sweep, hints, grace supersession) next to an `enrolld up` started with
 * JOBS=off. It needs the database and the issuing CA (a supersession rebuilds the CRL), never the broker: hints reach
 * brokers through Postgres NOTIFY, revocations through the revocation fan-out.
 */
export async function startRotationWorker(config: Readonly<Config>, logger: Logger, registry: Registry): Promise<{ stop(): Promise<void> }> {
  if (!config.databaseUrl) throw new Error('enrolld worker needs DATABASE_URL (the Postgres that `enrolld up` uses)');
  const paths = pkiPaths(config.home);
  const read = (file: string) =>
    readFile(file, 'utf8').catch(() => {
      throw new Error(`cannot read ${file}: run \`enrolld up\` once with this ENROLLD_HOME first`);
    });
  const [issuingCertificatePem, issuingKeyPem, rootCertificatePem] = await Promise.all([read(paths.issuingCert), read(paths.issuingKey), read(paths.rootCert)]);
  const ca = createIssuingCa({ issuingCertificatePem, issuingPrivateKey: createPrivateKey(issuingKeyPem), rootCertificatePem });
  const pool = createPool({ connectionString: config.databaseUrl, max: 4, applicationName: 'enrolld-worker' });
  try {
    await migrate(pool);
    const revocation = createRevocationRuntime({ pool, ca, logger });
    const rotation = createRotationRuntime({ pool, databaseUrl: config.databaseUrl, ca, logger, registry, config, revoker: revocation.service, runWorkers: true });
    await rotation.start({ listen: false });
    logger.info({ jobsPrefix: config.rotation.jobsPrefix ?? defaultJobsPrefix(config.databaseUrl) }, 'enrolld worker ready');
    return {
      async stop() {
        await rotation.stop();
        await pool.end();
      },
    };
  } catch (error) {
    await pool.end();
    throw error;
  }
}
