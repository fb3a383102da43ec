// The broker role: MQTT over mutual TLS with admission and active revocation. `enrolld broker` runs it alone (it never
// holds a CA key: only its TLS key and the CA certificates); `enrolld up` runs it with rotation on the broker:
// renewal over MQTT, hints to live sessions, and supersede on a successor's first CONNECT.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { createPgPresenceStore, createPgEnvironmentStore, createPgProfileListener, createPgProfileStore, createPgRegistryListener, createPgRegistryStore, createPgRevocationStore, createPgRotationListener } from '@enrolld/db';
import { DEFAULT_ENVIRONMENT } from '@enrolld/protocol';
import type { RegistryFeed } from '@enrolld/core/admission/ports.js';
import { profileSourceIn } from '@enrolld/core/profiles/ports.js';
import { systemClock } from '@enrolld/core/clock.js';
import type { OutboundRelay } from '@enrolld/core/events/outbound-relay.js';
import { createPresenceWriter, type PresenceWriter } from '@enrolld/core/fleet/presence.js';
import type { ClusterEvents } from '@enrolld/core/fleet/cluster-events.js';
import { createFleetEvents } from '@enrolld/core/fleet/live-events.js';
import { buildClusterEvents } from './cluster-events.js';
import type { Config } from '../config.js';
import { classifyInfrastructureError } from '../infrastructure-errors.js';
import { createBrokerHttpServer } from '../http/broker-http.js';
import { createRegistry } from '../metrics.js';
import { createBroker, defaultBrokerConfig, type Broker, type BrokerHooks } from '../mqtt/broker.js';
import { createClusterBus } from '../mqtt/cluster-bus.js';
import { createRenewalTopic } from '../mqtt/renewal-topic.js';
import { buildOnDatabase, type Database } from './database.js';
import { readBrokerMaterial, type BrokerMaterial } from './pki-home.js';
import type { UseCases } from './use-cases.js';

export interface BrokerRoleDeps {
  config: Readonly<Config>;
  logger: Logger;
  registry: Registry;
  database: Database;
  material: BrokerMaterial;
  /** Revocation and issuance events: the Postgres NOTIFY feed, merged with the in-process feeds when the API runs here too. */
  feed: RegistryFeed;
  outbound?: OutboundRelay | undefined;
  hooks?: BrokerHooks[] | undefined;
  /** Aborted when the process starts shutting down: a feed lost after that is expected (quietOnShutdown). */
  stopping?: AbortSignal | undefined;
}

export function buildBrokerRole(deps: BrokerRoleDeps): Broker {
  const { config } = deps;
  return createBroker({
    config: {
      ...defaultBrokerConfig,
      host: config.listenHost,
      port: config.mqttsPort,
      resyncIntervalMs: config.broker.resyncIntervalMs,
      maxStalenessMs: config.broker.maxStalenessMs,
      sessionTickets: config.broker.sessionTickets,
      connectTimeoutMs: config.broker.connectTimeoutMs,
      heartbeatIntervalMs: config.broker.heartbeatIntervalMs,
      handshakeTimeoutMs: config.broker.handshakeTimeoutMs,
      maxPendingPerAddress: config.broker.maxPendingPerAddress,
      maxPending: config.broker.maxPending,
      limits: config.broker.limits,
    },
    tls: {
      key: deps.material.serverKeyPem,
      cert: deps.material.serverCertPem,
      ca: deps.material.chainPem,
      issuingCertificate: deps.material.issuingCertPem,
    },
    // Admission reads (snapshot, resync, the lookup of an unknown serial) share the pool kept for revocation, so a
    // burst of renewals cannot starve them.
    store: { ...createPgRevocationStore(deps.database.revocationPool), ...createPgRegistryStore(deps.database.revocationPool) },
    feed: deps.feed,
    // Profile changes reach every broker, this process's included, by NOTIFY on their own LISTEN connection. A broker
    // reads its own environment's profiles: the profile a certificate names is looked up there.
    profiles: {
      source: profileSourceIn(createPgProfileStore(deps.database.revocationPool), config.environment),
      feed: quietOnShutdown(
        createPgProfileListener({ connectionString: deps.database.url, environment: config.environment, applicationName: 'enrolld-broker-profiles' }),
        deps.stopping,
      ),
    },
    outbound: deps.outbound,
    hooks: deps.hooks,
    cluster:
      config.broker.cluster.mode === 'redis'
        ? createClusterBus({ redisUrl: config.redisUrl, prefix: config.broker.cluster.prefix, logger: deps.logger, registry: deps.registry })
        : undefined,
    clock: systemClock,
    logger: deps.logger,
    registry: deps.registry,
  });
}

/**
 * What the broker of ENROLLD_ENV presents and trusts. `default` reads its home as before; another environment must be
 * live in Postgres, which holds the chain it trusts: any other name stops the start with a message naming it.
 */
export async function brokerMaterialFor(config: Readonly<Config>, database: Database): Promise<BrokerMaterial> {
  if (config.environment === DEFAULT_ENVIRONMENT) return readBrokerMaterial(config.home);
  const environment = await createPgEnvironmentStore(database.revocationPool).get(config.environment);
  if (!environment || environment.deletedAt) {
    throw new Error(`ENROLLD_ENV=${config.environment}: there is no environment "${config.environment}"${environment ? ' (it was deleted)' : ''}; \`enrolld env list\` shows the environments`);
  }
  return readBrokerMaterial(config.home, { name: environment.name, chain: environment });
}

/** The Postgres NOTIFY feed of revocations and issuance, on its own connection. */
export function registryNotifyFeed(database: Database): RegistryFeed {
  return createPgRegistryListener({ connectionString: database.url, applicationName: 'enrolld-broker-listen' });
}

/**
 * A feed whose connection changes are not reported once the process is shutting down. `enrolld up`'s embedded Postgres is in the
 * terminal's process group, so Ctrl-C stops it too and it may close the feed before the broker stops listening: an
 * expected end, not a lost feed.
 */
export function quietOnShutdown<H extends { onConnection(connected: boolean, error?: unknown): void }, F extends { start(handlers: H): Promise<void>; stop(): Promise<void> }>(
  feed: F,
  stopping: AbortSignal | undefined,
): F {
  if (!stopping) return feed;
  return {
    ...feed,
    start: (handlers) =>
      feed.start({
        ...handlers,
        onConnection: (connected, error) => {
          if (!stopping.aborted) handlers.onConnection(connected, error);
        },
      }),
    stop: () => feed.stop(),
  };
}

export interface BrokerRotation {
  hooks: BrokerHooks;
  /** Loads pending successors and listens for hints and renewals from other processes. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Rotation on a broker that shares its process with the use cases (`enrolld up`). */
export function buildBrokerRotation(deps: {
  logger: Logger;
  registry: Registry;
  database: Database;
  useCases: Pick<UseCases, 'renewal' | 'lineage'>;
  outbound: OutboundRelay;
  /** Aborted when the process starts shutting down: a feed lost after that is expected (quietOnShutdown). */
  stopping?: AbortSignal | undefined;
}): BrokerRotation {
  const log = deps.logger.child({ component: 'rotation' });
  const { lineage } = deps.useCases;
  const topic = createRenewalTopic({
    renewal: deps.useCases.renewal,
    lineage,
    logger: deps.logger,
    registry: deps.registry,
    classifyError: classifyInfrastructureError,
    outbound: deps.outbound,
  });
  const feed = createPgRotationListener({ connectionString: deps.database.url, applicationName: 'enrolld-rotation-listen' });
  let listening = false;
  return {
    hooks: topic.hooks,
    async start() {
      const loaded = await lineage.load();
      if (loaded > 0) log.info({ pending: loaded }, 'successors waiting to supersede their predecessor');
      await feed.start({
        onHint: (hint) => topic.deliverHint(hint),
        onRenewal: (entry) => lineage.noteRenewal(entry),
        onConnection: (connected, error) => {
          // Once shutdown began, the feed's ups and downs are the embedded Postgres stopping too (quietOnShutdown).
          if (deps.stopping?.aborted) return;
          if (connected) {
            // Renewals issued while the feed was down are in the store: reload them (the map is idempotent).
            void lineage.load().catch((err: unknown) => deps.stopping?.aborted || log.warn({ err }, 'reloading pending supersessions failed'));
          } else {
            log.warn({ err: error instanceof Error ? error.message : String(error) }, 'rotation feed lost; reconnecting');
          }
        },
      });
      listening = true;
    },
    async stop() {
      if (listening) await feed.stop();
      listening = false;
    },
  };
}

/**
 * Whether a broker admits CONNECTs: its revocation state is current and, in a cluster, its bus is up and resynced. The
 * readiness of `enrolld up`'s /readyz and of `enrolld broker`'s (docs/architecture.md §6, "When admission fails closed").
 */
export function brokerReadiness(broker: Pick<Broker, 'revocationStatus' | 'clusterReady'>): Record<'revocationState' | 'clusterBus', () => boolean> {
  return { revocationState: () => broker.revocationStatus().known, clusterBus: () => broker.clusterReady() };
}

export interface BuiltBroker {
  broker: Broker;
  /** This node's presence writer (flush() and heartbeat() let tests write without waiting for the timers). */
  presence: PresenceWriter;
  /** This node's relay of live events to the APIs (flush() lets tests send without waiting for the timer). */
  fleetEvents: ClusterEvents;
  /** Starts the HTTP port (BROKER_HTTP_PORT), then MQTT; resolves once both listen. */
  listen(): Promise<{ port: number; httpPort: number }>;
  stop(): Promise<void>;
}

/** `enrolld broker`: the broker alone, over the DATABASE_URL and ENROLLD_HOME of the API. */
export async function buildBroker(config: Readonly<Config>, logger: Logger): Promise<BuiltBroker> {
  // The broker may start before the API or while Postgres is down: it fails closed until the revocation state loads.
  const options = { config, logger, applicationName: 'enrolld-broker', poolMax: config.roleDbPoolMax, allowEmbedded: false, waitForMigrations: false };
  return buildOnDatabase(options, async (database) => {
    const material = await brokerMaterialFor(config, database);
    const registry = createRegistry();
    const presence = buildPresence({ config, logger, database });
    // Connections and refusals go to every API's live events (sent in batches, never on the CONNECT path).
    const fleetEvents = createFleetEvents();
    const clusterEvents = buildClusterEvents({ database, events: fleetEvents, logger, registry, listen: false });
    const broker = buildBrokerRole({ config, logger, registry, database, material, feed: registryNotifyFeed(database), hooks: [presence.hooks, fleetEventHooks(fleetEvents)] });
    const ready = brokerReadiness(broker);
    let mqttListening = false;
    const http = createBrokerHttpServer({
      host: config.brokerHttp.host,
      port: config.brokerHttp.port,
      registry,
      // Admission also waits for the profiles and for the MQTT port itself (a cluster node listens once its bus is up).
      checkReadiness: () => ({ mqtt: mqttListening, revocationState: ready.revocationState(), clusterBus: ready.clusterBus(), profiles: broker.profilesLoaded() }),
    });
    return {
      broker,
      presence: presence.writer,
      fleetEvents: clusterEvents,
      async listen() {
        // HTTP first: /healthz answers and /readyz says why not yet while MQTT waits for its cluster bus.
        const { port: httpPort } = await http.listen();
        logger.info({ host: config.brokerHttp.host, port: httpPort }, 'broker HTTP listening (/healthz, /readyz, /metrics)');
        await clusterEvents.start();
        const listening = await broker.start();
        mqttListening = true;
        await presence.writer.start();
        return { ...listening, httpPort };
      },
      async stop() {
        mqttListening = false;
        await presence.writer.stop();
        await broker.stop();
        await clusterEvents.stop();
        await http.close();
      },
    };
  });
}

/**
 * This broker node's share of the cluster-wide presence (docs/architecture.md §9b): hooks that only note connections
 * in memory, and the writer that sends them to Postgres in batches with the node's heartbeat. Start it after the broker
 * listens and stop it before the broker stops: the node's rows go with it.
 */
export function buildPresence(deps: { config: Readonly<Config>; logger: Logger; database: Database; stopping?: AbortSignal | undefined }): { hooks: BrokerHooks; writer: PresenceWriter } {
  const { presence } = deps.config.broker;
  const log = deps.logger.child({ component: 'presence' });
  let lastErrorLogAt = 0;
  const writer = createPresenceWriter({
    store: createPgPresenceStore(deps.database.pool),
    nodeId: `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`,
    environment: deps.config.environment,
    flushMs: presence.flushMs,
    heartbeatMs: presence.heartbeatMs,
    staleAfterMs: presence.staleAfterMs,
    onError: (error, what) => {
      // One line per 30 s: presence is a view, and the next write retries. Once shutdown began, a failed write is the
      // database stopping too.
      if (deps.stopping?.aborted || Date.now() - lastErrorLogAt < 30_000) return;
      lastErrorLogAt = Date.now();
      log.warn({ err: error instanceof Error ? error.message : String(error), what }, 'presence write failed; retrying');
    },
  });
  return {
    writer,
    hooks: {
      onConnected: (s) => writer.connected(s.deviceId),
      onDisconnected: (s) => writer.disconnected(s.deviceId),
    },
  };
}

/** Connections, disconnections and refusals of this process's broker, to the console's live events. */
export function fleetEventHooks(events: Pick<UseCases['fleetEvents'], 'publish' | 'now'>): BrokerHooks {
  return {
    onConnected: (s) => events.publish({ type: 'connected', deviceId: s.deviceId, serial: s.serial, at: events.now() }),
    onDisconnected: (s) => events.publish({ type: 'disconnected', deviceId: s.deviceId, serial: s.serial, at: events.now() }),
    onRefused: (r) => events.publish({ type: 'refused', deviceId: r.deviceId, serial: r.serial, reason: r.reason, at: events.now() }),
  };
}
