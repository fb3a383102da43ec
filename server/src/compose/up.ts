// `enrolld up`: the API, the broker and (with JOBS=in-process) the worker in one process, over one pool, one registry
// and one set of use cases. Revocations and issued certificates reach the local broker through the in-process feeds
// (no NOTIFY round trip), merged with the NOTIFY feed that carries other processes' events; server-originated MQTT
// messages go through the outbound relay. Nothing is attached late: every event source exists before the parts that use it.
import type { Logger } from 'pino';
import { createLocalIssuanceFeed } from '@enrolld/core/events/local-issuance-feed.js';
import { createLocalRevocationFeed } from '@enrolld/core/events/local-revocation-feed.js';
import { mergeRevocationFeeds } from '@enrolld/core/events/merge-feeds.js';
import { createOutboundRelay } from '@enrolld/core/events/outbound-relay.js';
import type { Config } from '../config.js';
import { createRegistry } from '../metrics.js';
import type { Broker } from '../mqtt/broker.js';
import type { JobRuntime } from '../jobs/job-runtime.js';
import { buildApiRole, ensureFirstAdmin, prepareApiPki } from './api.js';
import type { PresenceWriter } from '@enrolld/core/fleet/presence.js';
import { brokerMaterialFor, brokerReadiness, buildBrokerRole, buildBrokerRotation, buildPresence, fleetEventHooks, quietOnShutdown, registryNotifyFeed } from './broker.js';
import { openDatabase } from './database.js';
import { prepareEnvironments } from './environments.js';
import { buildUseCases, type UseCases } from './use-cases.js';
import { buildJobProducer, buildWorkerRole } from './worker.js';

export interface UpEndpoints {
  apiUrl: string;
  httpsPort: number;
  mqttsPort: number;
}

export interface BuiltUp {
  databaseUrl: string;
  embeddedPostgres: boolean;
  useCases: UseCases;
  broker: Broker;
  /** The broker's presence writer (flush() and heartbeat() let tests write without waiting for the timers). */
  presence: PresenceWriter;
  /** The rotation jobs, when they run in this process (JOBS=in-process). */
  jobs: JobRuntime | undefined;
  /** Rejects when the embedded Postgres stays down after its restarts (database.ts): the process should exit non-zero. */
  failed: Promise<never>;
  /** Ordered start: CRL and HTTPS, then the broker (its first sync before it listens), then rotation, then jobs. */
  listen(): Promise<UpEndpoints>;
  /** Ordered stop, the reverse; also closes the pool and the embedded Postgres. Safe to call after a failed listen. */
  stop(): Promise<void>;
}

export async function buildUp(config: Readonly<Config>, logger: Logger, signal?: AbortSignal): Promise<BuiltUp> {
  const registry = createRegistry();
  const database = await openDatabase({ config, logger, applicationName: 'enrolld-api', poolMax: config.dbPoolMax, allowEmbedded: true, signal, registry });
  try {
    const pki = await prepareApiPki(config, logger);
    const environments = await prepareEnvironments(config, logger, database.pool, pki, { recordDefault: true });
    const localRevocations = createLocalRevocationFeed();
    const localIssuance = createLocalIssuanceFeed();
    const outbound = createOutboundRelay();
    const useCases = buildUseCases({
      config, pool: database.pool, revocationPool: database.revocationPool, ...environments, logger, registry, revocationEvents: localRevocations, issuanceEvents: localIssuance,
    });
    await ensureFirstAdmin(config, useCases, logger);

    const rotation = buildBrokerRotation({ logger, registry, database, useCases, outbound, stopping: signal });
    const presence = buildPresence({ config, logger, database, stopping: signal });
    const broker = buildBrokerRole({
      config,
      logger,
      registry,
      database,
      material: await brokerMaterialFor(config, database),
      feed: mergeRevocationFeeds(quietOnShutdown(registryNotifyFeed(database), signal), localRevocations, localIssuance),
      outbound,
      hooks: [rotation.hooks, fleetEventHooks(useCases.fleetEvents), presence.hooks],
      stopping: signal,
    });
    const api = buildApiRole({
      config, logger, registry, database, pki, useCases,
      // Ready when the broker admits: its revocation state is current and, in a cluster, its bus is up and resynced.
      readiness: brokerReadiness(broker),
      stopping: signal,
    });
    const worker = config.rotation.jobs === 'in-process' ? buildWorkerRole({ config, logger, registry, databaseUrl: database.url, useCases }) : undefined;
    const producer = worker ? undefined : buildJobProducer({ config, logger, registry, databaseUrl: database.url, useCases });

    const stops: Array<() => Promise<void>> = [];
    const stop = async () => {
      database.endSupervision();
      for (const step of stops.reverse()) await step().catch((err: unknown) => logger.error({ err }, 'error during shutdown'));
      stops.length = 0;
      await database.close();
    };
    return {
      databaseUrl: database.url,
      embeddedPostgres: database.embedded,
      useCases,
      broker,
      presence: presence.writer,
      jobs: worker?.jobs,
      failed: database.failed,
      async listen() {
        stops.push(() => api.stop());
        const http = await api.listen();
        stops.push(() => broker.stop());
        const { port: mqttsPort } = await broker.start();
        stops.push(() => presence.writer.stop());
        await presence.writer.start();
        stops.push(() => rotation.stop());
        await rotation.start();
        if (worker) {
          stops.push(() => worker.stop());
          worker.listen();
        }
        if (producer) {
          stops.push(() => producer.stop());
          producer.listen();
        }
        return { apiUrl: http.url, httpsPort: http.port, mqttsPort };
      },
      stop,
    };
  } catch (error) {
    await database.close();
    throw error;
  }
}
