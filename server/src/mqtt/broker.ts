// The device MQTT broker: aedes on a mutual-TLS listener, with admission and revocation enforced on every path
// (docs/architecture.md §6, §7):
//  1. TLS handshake: our chain only; a certificate that fails verification is closed, except one of ours whose only
//     fault is its validity period, which gets CONNACK 5 `expired` at CONNECT (tls-listener.ts). No CRL here.
//  2. MQTT CONNECT: admitted only if the registry holds the serial as its device's current certificate or that one's
//     predecessor, and it is not revoked; every other certificate gets CONNACK 5 with its reason. A resumed TLS
//     session passes here too, and so does a CONNECT to another broker process (admission.ts).
//  3. Live sessions: a revocation from the feed (Postgres NOTIFY, the in-process push) or the seq resync destroys
//     the sockets of that serial at once (revocation-cut.ts); a session ends at its certificate's notAfter or when its
//     profile's access window closes (session-expiry.ts).
//  4. Residue: the will is dropped and, unless the reason is `superseded`, the device's session state and retained
//     messages are purged (revocation-cut.ts).
//  5. Fail closed: while the state is unknown (never loaded, or stale) every device CONNECT gets CONNACK 3; so does a
//     cluster node from the loss of its bus until it has resynced after the bus came back.
// This file builds those parts from deps given up front and runs them; it holds no policy of its own.
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Aedes, AedesOptions, Client, PublishPacket } from 'aedes';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from '@enrolld/core/clock.js';
import type { RegistryFeed, RegistryStore } from '@enrolld/core/admission/ports.js';
import { createRegistryLookup } from '@enrolld/core/admission/registry-lookup.js';
import { createAdmissionRegistry } from '@enrolld/core/admission/registry.js';
import type { OutboundRelay } from '@enrolld/core/events/outbound-relay.js';
import type { RevocationStore } from '@enrolld/core/revocation/ports.js';
import { createRevocationState } from '@enrolld/core/revocation/revocation-state.js';
import { createRevocationSync } from '@enrolld/core/revocation/revocation-sync.js';
import { createAdmission } from './admission.js';
import { createClusterAedes, createMemoryPersistence, createQuietAedes } from './aedes-internals.js';
import { createBrokerMetrics } from './broker-metrics.js';
import type { ClusterBus } from './cluster-bus.js';
import { createConnectRateLimit } from './connect-rate.js';
import { createConnectionLimits } from './connection-limits.js';
import { defaultConnectionLimits, type ConnectionLimits, type LimitsFor } from './limits.js';
import { createPacketAuthorization } from './packet-authorization.js';
import { createProfileEnforcement } from './profile-enforcement.js';
import { createProfileAcls, type ProfileFeed, type ProfileSource } from '@enrolld/core/acl/profile-acls.js';
import { createPeerIdentityReader } from './peer-identity.js';
import { createRevocationCut } from './revocation-cut.js';
import { createSessionExpiry } from './session-expiry.js';
import { attachSessionHooks, type BrokerHooks } from './session-hooks.js';
import { createSessionIndex } from './session-index.js';
import { createTlsListener, type BrokerTls } from './tls-listener.js';

export type { BrokerHooks, DeviceSessionRef } from './session-hooks.js';
export type { ConnectRefusal } from './admission.js';
export type { BrokerTls } from './tls-listener.js';
export type { ConnectionLimits, LimitsFor } from './limits.js';

export interface BrokerConfig {
  host: string;
  /** 8883 by default (MQTTS_PORT); 0 picks a free port (tests). */
  port: number;
  /** How often the seq resync runs: the bound on how long a lost NOTIFY goes unnoticed. */
  resyncIntervalMs: number;
  /** With no successful sync for this long, the state is unknown and device CONNECTs are refused. */
  maxStalenessMs: number;
  /**
   * TLS session tickets (resumption). Off by default: each ticket pair costs ~16 KiB per idle connection on Node 20
   * and Node keeps no server-side session cache, so off means every reconnect is a full handshake.
   * On is safe because admission (revocation included) is decided at CONNECT, which a resumed session reaches too;
   * brokers that share `ticketKeys` let a device resume on another node.
   */
  sessionTickets: boolean;
  /** 48 bytes; random per process when absent. */
  ticketKeys?: Buffer | undefined;
  /** Aedes $SYS heartbeat. Long by default: nothing in a single broker listens to it. */
  heartbeatIntervalMs: number;
  /** Time a TLS connection may take to send CONNECT. */
  connectTimeoutMs: number;
  /** Time a TCP connection may take to finish its TLS handshake. */
  handshakeTimeoutMs: number;
  /** Sockets not yet admitted at CONNECT, per source address and in all. */
  maxPendingPerAddress: number;
  maxPending: number;
  /** Per-identity limits of every device unless `BrokerDeps.limitsFor` resolves others. */
  limits: ConnectionLimits;
}

export interface BrokerDeps {
  config: BrokerConfig;
  tls: BrokerTls;
  store: Pick<RevocationStore, 'snapshot' | 'revokedSince'> & RegistryStore;
  /** Every source of revocation and issuance events for this process, merged by the composition (NOTIFY first). */
  feed: RegistryFeed;
  /** Profiles (each one's compiled ACL) and their changes: loaded before the broker listens, applied live. */
  profiles: { source: ProfileSource; feed: ProfileFeed };
  /** Server-originated publishes (renewal replies, rotation hints): consumed while the broker runs. */
  outbound?: OutboundRelay | undefined;
  /** Extensions that act on device sessions. */
  hooks?: BrokerHooks[] | undefined;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /**
   * The limits of one identity, resolved when its CONNECT is admitted; `config.limits` for all when absent. Certificate
   * profiles override limits by passing a resolver.
   */
  limitsFor?: LimitsFor | undefined;
  /** Aedes persistence; in-memory when absent. */
  persistence?: AedesOptions['persistence'];
  /** The Redis bus shared with the other nodes of a cluster (emitter and persistence); single-node when absent. */
  cluster?: ClusterBus | undefined;
}

export const defaultBrokerConfig: BrokerConfig = {
  host: '0.0.0.0',
  port: 8883,
  resyncIntervalMs: 5000,
  maxStalenessMs: 60_000,
  sessionTickets: false,
  heartbeatIntervalMs: 60_000,
  connectTimeoutMs: 10_000,
  handshakeTimeoutMs: 10_000,
  maxPendingPerAddress: 256,
  maxPending: 4096,
  limits: defaultConnectionLimits,
};

/** The longest a stopping cluster node waits for aedes' close (which needs Redis) before it goes on. */
const CLUSTER_CLOSE_TIMEOUT_MS = 3000;

/** True when `promise` settled within `ms`; the timer never outlives the race. */
async function settleWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether a cluster node admits (docs/architecture.md §6, "Broker cluster"): from the loss of its bus until the bus is
 * back and the node has resynced (the revocation state from Postgres, then the purges the outage held up), every
 * CONNECT gets CONNACK 3 `cluster-bus-down`. A resync that fails is tried again a second later while the bus stays up.
 */
function createClusterGate(bus: ClusterBus | undefined, log: Logger) {
  let state: 'ready' | 'down' | 'resyncing' = 'ready';
  let running = false;
  let generation = 0;
  let resync: ((devices: string[]) => Promise<void>) | undefined;
  let retry: NodeJS.Timeout | undefined;
  /** Devices whose residue purge started while the bus was not ready: purged again by the resync. */
  const heldPurges = new Set<string>();

  function resyncNow(): void {
    const mine = ++generation;
    state = 'resyncing';
    const devices = [...heldPurges];
    void resync!(devices).then(
      () => {
        if (mine !== generation || !running) return;
        for (const deviceId of devices) heldPurges.delete(deviceId);
        state = 'ready';
        log.info({ purged: devices.length }, 'cluster bus resynced: admitting CONNECTs again');
      },
      (error: unknown) => {
        if (mine !== generation || !running) return;
        log.warn({ err: error instanceof Error ? error.message : String(error) }, 'cluster bus resync failed: retrying');
        retry = setTimeout(() => {
          retry = undefined;
          if (running && bus?.connected() && mine === generation) resyncNow();
        }, 1000);
        retry.unref();
      },
    );
  }

  return {
    start(run: (devices: string[]) => Promise<void>): void {
      if (!bus) return;
      running = true;
      resync = run;
      bus.onChange((connected) => {
        if (!running) return;
        clearTimeout(retry);
        if (!connected) {
          generation++;
          state = 'down';
        } else resyncNow();
      });
      // The bus was ready when the broker started (start() waits for it); a loss since is caught up now.
      if (!bus.connected()) state = 'down';
    },
    stop(): void {
      running = false;
      clearTimeout(retry);
    },
    ready: () => !bus || state === 'ready',
    purgeStarted(deviceId: string): void {
      if (bus && (state !== 'ready' || !bus.connected())) heldPurges.add(deviceId);
    },
  };
}

/** Device client ids are device ids: at most 63 characters (MQTT-3.1.3-5 lets a server accept longer ones). */
const MAX_CLIENT_ID_LENGTH = 63;

export function createBroker(deps: BrokerDeps) {
  const { config, clock } = deps;
  const log = deps.logger.child({ component: 'broker' });
  let aedes: Aedes | undefined;
  const currentAedes = () => aedes;

  const state = createRevocationState({ maxStalenessMs: config.maxStalenessMs });
  const identities = createPeerIdentityReader({ issuer: deps.tls.issuingCertificate });
  const sessions = createSessionIndex();
  const metrics = createBrokerMetrics(deps.registry, {
    connectedDevices: () => aedes?.connectedClients ?? 0,
    // Read on a scrape only, after the listener below exists.
    unauthenticatedConnections: () => tlsListener.pendingCount(),
  });
  const tlsListener = createTlsListener(
    deps.tls,
    {
      host: config.host,
      port: config.port,
      sessionTickets: config.sessionTickets,
      ticketKeys: config.ticketKeys ?? randomBytes(48),
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      maxPendingPerAddress: config.maxPendingPerAddress,
      maxPending: config.maxPending,
    },
    { log, metrics, identities },
  );
  const limitsFor = deps.limitsFor ?? (() => config.limits);
  const limits = createConnectionLimits({
    limitsFor,
    defaults: config.limits,
    aedes: currentAedes,
    // Called per message once the broker runs, after `authorization` below exists.
    mayForward: (client, packet) => Boolean(authorization.authorizeForward(client, packet as Parameters<typeof authorization.authorizeForward>[1])),
    metrics,
    log,
  });
  const registry = createAdmissionRegistry({ revocationOf: (serial) => state.revocationOf(serial) });
  // One catalog of compiled profiles: loaded and kept current by the enforcement, read by admission, the packet checks
  // and the session timers (which close a session when its profile's access window does).
  const acls = createProfileAcls();
  const expiry = createSessionExpiry({ clock, metrics, log, accessOf: (profile) => acls.get(profile)?.access });
  const profiles = createProfileEnforcement({ ...deps.profiles, acls, expiry, sessions, aedes: currentAedes, metrics, log });
  const admission = createAdmission({
    acls,
    profilesLoaded: () => profiles.loaded(),
    clusterReady: deps.cluster ? () => cluster.ready() : undefined,
    state,
    registry,
    lookup: createRegistryLookup({ store: deps.store, registry, clock }),
    identities,
    sessions,
    expiry,
    connectRate: createConnectRateLimit(),
    limitsFor,
    admitted: (client, identity) => {
      tlsListener.admitted(client.conn as Socket);
      limits.admitted(client, identity);
    },
    metrics,
    clock,
    log,
    onRefused: (refusal) => {
      for (const hook of deps.hooks ?? []) {
        try {
          hook.onRefused?.(refusal);
        } catch (error) {
          log.error({ err: error, deviceId: refusal.deviceId }, 'broker hook failed');
        }
      }
    },
  });
  const authorization = createPacketAuthorization({ state, sessions, acls, metrics, limits, aedes: currentAedes, log });
  const cluster = createClusterGate(deps.cluster, log);
  const cut = createRevocationCut({
    sessions,
    aedes: currentAedes,
    metrics,
    log,
    retainedPurged: (deviceId) => limits.retainedPurged(deviceId),
    onPurge: (deviceId) => cluster.purgeStarted(deviceId),
  });
  const sync = createRevocationSync({
    store: deps.store,
    feed: deps.feed,
    registry: { registry, store: deps.store },
    state,
    clock,
    logger: log,
    resyncIntervalMs: config.resyncIntervalMs,
    onRevoked: (notices) => {
      for (const notice of notices) registry.revoked(notice.serial, notice.deviceId);
      cut(notices);
    },
  });

  let started = false;
  let stopConsuming: (() => void) | undefined;

  /**
   * One connection from the listener, after its TLS handshake was accepted: aedes takes it and the limits watch its
   * bytes. A fuzz harness hands in-process streams to this same function (test/fuzz/targets/mqtt.ts).
   */
  function handleConnection(socket: Duplex): void {
    const broker = aedes;
    if (!broker || broker.closed) {
      socket.destroy();
      return;
    }
    limits.attach(broker.handle(socket));
  }

  /** A server-originated PUBLISH (not retained) to whoever subscribed; authorizeForward still applies. */
  function publish(topic: string, payload: Buffer | string, qos: 0 | 1 = 1): Promise<void> {
    const broker = aedes;
    if (!broker || broker.closed) return Promise.reject(new Error('broker not running'));
    const packet = { cmd: 'publish', topic, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos, retain: false, dup: false } as PublishPacket;
    return new Promise((resolve, reject) => broker.publish(packet, (error?: Error) => (error ? reject(error) : resolve())));
  }

  return {
    async start(): Promise<{ port: number }> {
      if (started) throw new Error('broker already started');
      started = true;
      const options: AedesOptions = {
        ...admission,
        ...authorization,
        heartbeatInterval: config.heartbeatIntervalMs,
        connectTimeout: config.connectTimeoutMs,
        maxClientsIdLength: MAX_CLIENT_ID_LENGTH,
        // The inbound QoS 2 window is a per-identity limit (connection-limits.ts), checked before aedes' own.
        maxInflightInbound: 0,
        // aedes' memory persistence unless the cluster shares one; ours also tells the patched CONNECT when a clean
        // session has nothing queued (aedes-internals.ts).
        persistence: deps.persistence ?? createMemoryPersistence(),
      };
      // A node joins its cluster with a working bus: aedes' setup reads the shared subscriptions from it.
      if (deps.cluster) await deps.cluster.ready();
      const broker = deps.cluster ? createClusterAedes({ ...options, ...deps.cluster.aedesOptions() }) : createQuietAedes(options);
      aedes = broker;
      await broker.listen();
      // Aedes emits 'error' for failures outside any client (e.g. a refused left-over will in its will sweep); without a
      // listener EventEmitter would throw and take the process down.
      (broker as unknown as NodeJS.EventEmitter).on('error', (error: Error) => log.warn({ err: error.message }, 'aedes error'));
      broker.on('clientError', (client, error) => log.debug({ clientId: client.id, err: error.message }, 'client error'));
      broker.on('unsubscribe', (filters, client) => limits.unsubscribed(client, filters));
      attachSessionHooks(broker, deps.hooks ?? [], sessions, log);
      // The first sync runs before we listen, so the first CONNECT already meets the loaded registry and profiles.
      await sync.start();
      cluster.start(async (devices) => {
        // Revocations committed while the bus was down reached this node through Postgres (the feed, the resync) and cut
        // its sockets, but their purges of the shared persistence waited for Redis: catch up on the store, then purge
        // every one of them again (idempotent) before anyone is admitted.
        await sync.syncNow();
        for (const deviceId of devices) await cut.purgeResidue(deviceId);
      });
      await profiles.start();
      const port = await tlsListener.listen(handleConnection);
      stopConsuming = deps.outbound?.consume((message) => publish(message.topic, message.payload, message.qos));
      log.info({ port, host: config.host, sessionTickets: config.sessionTickets, state: state.status() }, 'MQTT broker listening (mTLS)');
      return { port };
    },

    async stop(): Promise<void> {
      if (!started) return;
      started = false;
      stopConsuming?.();
      stopConsuming = undefined;
      await sync.stop();
      await profiles.stop();
      const broker = aedes;
      cluster.stop();
      const closed = tlsListener.stopListening();
      if (broker) {
        const aedesClosed = new Promise<void>((resolve) => broker.close(() => resolve()));
        // With a cluster, aedes' close writes session state to Redis and waits for its emitter to close there; with Redis
        // unreachable that would wait forever (ioredis queues commands until it reconnects). Bounded: stop goes on.
        if (deps.cluster) {
          const finished = await settleWithin(aedesClosed, CLUSTER_CLOSE_TIMEOUT_MS);
          if (!finished) log.warn({ timeoutMs: CLUSTER_CLOSE_TIMEOUT_MS, clusterBus: deps.cluster.connected() }, 'broker close did not finish with the cluster bus: stopping anyway');
        } else await aedesClosed;
      }
      tlsListener.destroySockets();
      await closed;
      await deps.cluster?.close();
      aedes = undefined;
    },

    /** The port actually bound (after start). */
    port: () => tlsListener.port(),
    handleConnection,
    publish,
    /** True when a live (unrevoked) session uses the certificate with this serial. */
    hasSession: (serial: string) => sessions.hasSession(serial),
    /** Runs a resync now (tests; the interval does it otherwise). */
    resync: () => sync.syncNow(),
    revocationStatus: () => state.status(),
    /** Devices the admission registry holds. */
    registeredDevices: () => registry.size(),
    connectedDevices: () => aedes?.connectedClients ?? 0,
    /** True without a cluster; with one, while this node reaches what admission depends on: the control channel and the store. */
    clusterBusConnected: () => deps.cluster?.connected() ?? true,
    /** True without a cluster; with one, while this node reaches the data channel (cross-node delivery only). */
    clusterBusDataConnected: () => deps.cluster?.dataConnected() ?? true,
    /** True without a cluster; with one, while the bus is up and this node has resynced since it came back (admission). */
    clusterReady: () => cluster.ready(),
    /** The version of a profile this broker enforces, and a promise of every heard profile change applied (tests). */
    profileVersion: (name: string) => profiles.versionOf(name),
    /** False until the profiles were loaded once (CONNECTs get CONNACK 3 meanwhile). */
    profilesLoaded: () => profiles.loaded(),
    profilesSettled: () => profiles.settled(),
    /** For tests and diagnostics only. */
    aedes: currentAedes,
  };
}

export type Broker = ReturnType<typeof createBroker>;
