// The device MQTT broker: Aedes 1.x on a mutual-TLS listener (DESIGN.md §2, §3, §7; issue 4).
//
// Revocation is enforced on every path (DESIGN.md §3):
//  1. TLS handshake: the issuing CA's CRL is in the secure context and swapped with setSecureContext() on each new CRL.
//  2. MQTT CONNECT: the serial is checked against the in-memory revocation state again. A resumed TLS session skips the
//     client-certificate check and Node accepts it (RELIABILITY.md §1.3-A), so this check is what makes resumption safe.
//  3. Live sessions: a revocation (NOTIFY, the seq resync, or in-process from the revoke use case) destroys the sockets
//     of that serial at once.
//  4. Residue: the will is dropped, and (unless the reason is `superseded`, a rotation that hands the session on) the
//     device's persistent subscriptions, queued messages, inbound QoS 2 state and retained messages are purged.
//  5. Fail closed: while the state is unknown (never loaded, or stale) every device CONNECT gets CONNACK 3.
import { constants as cryptoConstants, randomBytes } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import { Aedes, type AedesOptions, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { CONNACK, REVOCATION_REASONS } from '@enrolld/protocol';
import type { Clock } from '@enrolld/core/clock.js';
import type { RevocationFeed, RevocationStore, RevokedCertificate, StoredCrl } from '@enrolld/core/revocation/ports.js';
import { createRevocationState } from '@enrolld/core/revocation/revocation-state.js';
import { createRevocationSync, type RevokedNotice } from '@enrolld/core/revocation/revocation-sync.js';
import { normalizeSerial } from '@enrolld/core/revocation/serial.js';
import { createBrokerMetrics, type RefusalReason } from './broker-metrics.js';
import { createPeerIdentityReader, type PeerIdentity } from './peer-identity.js';
import { canPublish, canSubscribe } from './topic-acl.js';

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
   * (DESIGN.md §7) and Node keeps no server-side session cache, so off means every reconnect is a full handshake.
   * On is safe only because revocation is checked again at CONNECT; brokers that share `ticketKeys` let a device
   * resume on another node.
   */
  sessionTickets: boolean;
  /** 48 bytes; random per process when absent. Kept across setSecureContext() so a CRL swap does not end resumption. */
  ticketKeys?: Buffer | undefined;
  /** Aedes $SYS heartbeat. Long by default: nothing in a single broker listens to it. */
  heartbeatIntervalMs: number;
  /** Time a TLS connection may take to send CONNECT. */
  connectTimeoutMs: number;
}

export interface BrokerTls {
  /** Server key and certificate chain (PEM). */
  key: string | Buffer;
  cert: string | Buffer;
  /** Our chain only (issuing CA and root, PEM); never the system roots. */
  ca: string | Buffer;
  /** The issuing CA certificate (PEM or DER): device certificates must be issued by exactly this CA. */
  issuingCertificate: string | Buffer;
  /**
   * CRLs besides the issuing CA's own, PEM or DER: the root's CRL over the issuing CA. Node turns on
   * X509_V_FLAG_CRL_CHECK_ALL as soon as any CRL is set, so every CA in the chain needs one, or every handshake fails.
   */
  extraCrls?: Array<string | Buffer> | undefined;
}

export interface BrokerDeps {
  config: BrokerConfig;
  tls: BrokerTls;
  store: Pick<RevocationStore, 'snapshot' | 'revokedSince' | 'latestCrl'>;
  feed: RevocationFeed;
  clock: Clock;
  logger: Logger;
  registry: Registry;
  /** Aedes persistence; in-memory when absent. */
  persistence?: AedesOptions['persistence'];
  /** Extensions that act on device sessions (issue 5: renewal over MQTT, rotation hints, supersede on first use). */
  hooks?: BrokerHooks[] | undefined;
}

/** A live device session, as hooks see it: the identity the broker verified at CONNECT. */
export interface DeviceSessionRef {
  deviceId: string;
  /** Normalized (lowercase, no leading zeros). */
  serial: string;
}

/** Called after the broker's own checks passed; a hook never decides admission and its errors are only logged. */
export interface BrokerHooks {
  /** CONNACK 0 was sent. */
  onConnected?(session: DeviceSessionRef): void;
  /** A device's PUBLISH passed the ACL and was routed. */
  onPublish?(session: DeviceSessionRef, topic: string, payload: Buffer): void;
  /** SUBSCRIBE filters the ACL granted. */
  onSubscribed?(session: DeviceSessionRef, filters: string[]): void;
}

export const defaultBrokerConfig: BrokerConfig = {
  host: '0.0.0.0',
  port: 8883,
  resyncIntervalMs: 5000,
  maxStalenessMs: 60_000,
  sessionTickets: false,
  heartbeatIntervalMs: 60_000,
  connectTimeoutMs: 10_000,
};

interface ClientInternals {
  will: PublishPacket | null;
  _will: PublishPacket | null;
}

interface SessionInfo {
  identity: PeerIdentity;
  revoked: boolean;
}

// Aedes publishes `$SYS/<id>/new/clients` and `…/disconnect/clients` on every CONNECT and close. They exist for
// clientId takeover across a cluster of brokers sharing an mqemitter; one broker per process with in-memory mq has
// no listener that needs them, and they cost a full publish per connect (DESIGN.md §7, no $SYS publish per connect).
// Overrides of aedes 1.2.0 internals (pinned): restore when brokers share an emitter (DESIGN.md §9).
class QuietAedes extends Aedes {
  _finishRegisterClient(client: Client): void {
    const self = this as unknown as { connectedClients: number; clients: Record<string, Client> };
    self.connectedClients++;
    self.clients[client.id] = client;
    this.emit('client', client);
  }

  unregisterClient(client: Client): void {
    (this as unknown as { deleteClient(id: string): void }).deleteClient(client.id);
    this.emit('clientDisconnect', client);
  }
}

function pemCrl(crl: string | Buffer): string {
  if (typeof crl === 'string') return crl;
  const text = crl.toString('latin1');
  if (text.startsWith('-----BEGIN')) return text;
  const b64 = crl.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN X509 CRL-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END X509 CRL-----\n`;
}

function authError(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

const SUPERSEDED = REVOCATION_REASONS.superseded;

export function createBroker(deps: BrokerDeps) {
  const { config, logger, clock } = deps;
  const log = logger.child({ component: 'broker' });
  const state = createRevocationState({ clock, maxStalenessMs: config.maxStalenessMs });
  const identities = createPeerIdentityReader({ issuer: deps.tls.issuingCertificate });
  const sessions = new WeakMap<Client, SessionInfo>();
  const bySerial = new Map<string, Set<Client>>();
  const sockets = new Set<Socket>();
  const ticketKeys = config.ticketKeys ?? randomBytes(48);
  let aedes: QuietAedes | undefined;
  let server: tls.Server | undefined;
  let issuingCrl: StoredCrl | undefined;
  let lastUnknownLogAt = 0;

  const metrics = createBrokerMetrics(deps.registry, () => aedes?.connectedClients ?? 0);
  const hooks: BrokerHooks[] = [...(deps.hooks ?? [])];

  function runHooks(client: Client | null, call: (hook: BrokerHooks, ref: DeviceSessionRef) => void): void {
    if (hooks.length === 0 || !client) return;
    const info = sessions.get(client);
    if (!info || info.revoked) return;
    const ref = { deviceId: info.identity.deviceId, serial: info.identity.serial };
    for (const hook of hooks) {
      try {
        call(hook, ref);
      } catch (error) {
        log.error({ err: error, deviceId: ref.deviceId }, 'broker hook failed');
      }
    }
  }

  function secureOptions(): tls.SecureContextOptions & tls.TlsOptions {
    const crls = issuingCrl ? [pemCrl(issuingCrl.der), ...(deps.tls.extraCrls ?? []).map(pemCrl)] : undefined;
    return {
      key: deps.tls.key,
      cert: deps.tls.cert,
      ca: deps.tls.ca,
      ...(crls ? { crl: crls } : {}),
      minVersion: 'TLSv1.2',
      // SSL_OP_NO_TICKET: no NewSessionTicket records, so no resumption and no 16 KiB per idle connection.
      secureOptions: config.sessionTickets ? 0 : cryptoConstants.SSL_OP_NO_TICKET,
      ...(config.sessionTickets ? { ticketKeys } : {}),
    };
  }

  function applyCrl(crl: StoredCrl): void {
    if (issuingCrl && crl.crlNumber <= issuingCrl.crlNumber) return;
    issuingCrl = crl;
    if (server) {
      // New handshakes only; live connections are cut separately (Node docs: existing connections are not interrupted).
      server.setSecureContext(secureOptions());
    }
    log.info({ crlNumber: crl.crlNumber.toString(), nextUpdate: crl.nextUpdate.toISOString() }, 'CRL loaded into the TLS context');
  }

  function refuse(client: Client, done: (error: AuthenticateError | null, success: boolean | null) => void, code: number, reason: RefusalReason, fields: object, message: string): void {
    metrics.refused(reason);
    if (reason === 'revocation-state-unknown') {
      // One line per second at most: a reconnect storm during an outage must not flood the log.
      const now = Date.now();
      if (now - lastUnknownLogAt >= 1000) {
        lastUnknownLogAt = now;
        log.warn({ ...fields, clientId: client.id }, message);
      }
    } else {
      log.info({ ...fields, clientId: client.id, reason }, message);
    }
    done(authError(code, message), false);
  }

  function track(client: Client, info: SessionInfo): void {
    sessions.set(client, info);
    let set = bySerial.get(info.identity.serial);
    if (!set) {
      set = new Set();
      bySerial.set(info.identity.serial, set);
    }
    set.add(client);
    client.conn.once('close', () => {
      const s = bySerial.get(info.identity.serial);
      s?.delete(client);
      if (s && s.size === 0) bySerial.delete(info.identity.serial);
    });
  }

  const authenticate: NonNullable<AedesOptions['authenticate']> = (client, username, _password, done) => {
    const status = state.status();
    if (!status.known) {
      // MQTT 3.1.1 §3.2.2.3 code 3: the service is unavailable, try later. Fail closed (RELIABILITY.md I9).
      return refuse(client, done, CONNACK.serverUnavailable, 'revocation-state-unknown', { why: status.reason }, 'refusing CONNECT: revocation state unknown');
    }
    const read = identities.read(client.conn as tls.TLSSocket);
    if (!read.ok) return refuse(client, done, CONNACK.notAuthorized, 'no-identity', { why: read.reason }, 'refusing CONNECT: no device identity in the client certificate');
    const identity = read.identity;
    const fields = { deviceId: identity.deviceId, serial: identity.serial };
    // The clientId must equal the identity from the certificate (DESIGN.md §2). An empty clientId was replaced by
    // aedes with "aedes_<uuid>", so it fails here too. MQTT-3.1.3-9: refuse with code 2 (identifier rejected).
    if (client.id !== identity.deviceId) {
      return refuse(client, done, CONNACK.identifierRejected, 'client-id-mismatch', fields, 'refusing CONNECT: clientId is not the certificate identity');
    }
    if (username !== undefined && username !== '' && username !== identity.deviceId) {
      return refuse(client, done, CONNACK.badUsernameOrPassword, 'username-mismatch', fields, 'refusing CONNECT: username names another device');
    }
    // RFC 5280 §4.1.2.5, both ends inclusive. The handshake checked this already, but a resumed session did not.
    const now = clock.now().getTime();
    if (now < identity.notBefore || now > identity.notAfter) {
      return refuse(client, done, CONNACK.notAuthorized, 'outside-validity', fields, 'refusing CONNECT: certificate outside its validity period');
    }
    if (state.isRevoked(identity.serial)) {
      return refuse(client, done, CONNACK.notAuthorized, 'revoked', fields, 'refusing CONNECT: certificate revoked');
    }
    // The will goes through the same ACL (DESIGN.md §2; GHSA-4cmx-hrq9-c23p). Refusing it here tells the device at
    // once, instead of silently dropping the will when the session dies.
    const will = (client as unknown as ClientInternals)._will;
    if (will && !canPublish(identity.deviceId, will.topic)) {
      return refuse(client, done, CONNACK.notAuthorized, 'will-denied', { ...fields, topic: will.topic }, 'refusing CONNECT: will topic outside the device prefix');
    }
    track(client, { identity, revoked: false });
    done(null, true);
  };

  function sessionOf(client: Client | null): SessionInfo | undefined {
    return client ? sessions.get(client) : undefined;
  }

  const authorizePublish: NonNullable<AedesOptions['authorizePublish']> = (client, packet, callback) => {
    if (client === null) {
      // A will left in persistence by a broker that died (Aedes #769): it carries the serial we stamped at CONNECT.
      const will = packet as PublishPacket & { clientId?: string; enrolldSerial?: string };
      const ok = typeof will.clientId === 'string' && typeof will.enrolldSerial === 'string' &&
        !state.isRevoked(will.enrolldSerial) && state.status().known && canPublish(will.clientId, packet.topic);
      if (!ok) {
        log.info({ deviceId: will.clientId, serial: will.enrolldSerial, topic: packet.topic }, 'left-over will refused');
        // Aedes deletes a will only after publishing it; drop a refused one here so it is not retried forever.
        if (typeof will.clientId === 'string') {
          const persistence = (aedes as unknown as { persistence?: { delWill(c: { id: string }): Promise<unknown> } } | undefined)?.persistence;
          persistence?.delWill({ id: will.clientId }).catch(() => undefined);
        }
      }
      return callback(ok ? null : new Error('will not authorized'));
    }
    const session = sessionOf(client);
    if (!session || session.revoked || state.isRevoked(session.identity.serial)) return callback(new Error('not authorized'));
    if (!canPublish(session.identity.deviceId, packet.topic)) {
      log.info({ deviceId: session.identity.deviceId, topic: packet.topic }, 'publish denied by ACL; closing the connection');
      return callback(new Error('topic not authorized'));
    }
    callback(null);
  };

  const authorizeSubscribe: NonNullable<AedesOptions['authorizeSubscribe']> = (client, sub: Subscription, callback) => {
    const session = sessionOf(client);
    if (!session || session.revoked || !canSubscribe(session.identity.deviceId, sub.topic)) {
      // Negate (SUBACK 0x80, MQTT-3.9.3); aedes then sends no retained messages for it (Aedes #719/#720).
      return callback(null, null);
    }
    callback(null, sub);
  };

  const authorizeForward: NonNullable<AedesOptions['authorizeForward']> = (client, packet) => {
    const session = sessionOf(client);
    // Nothing reaches a session whose certificate was revoked, in the moments before its socket is gone.
    if (!session || session.revoked) return null;
    return packet;
  };

  const preConnect: NonNullable<AedesOptions['preConnect']> = (client, packet, callback) => {
    // Stamp the will with the connection's serial (before storeWill persists it), so a will left behind by a dead
    // broker can still be checked against revocation (authorizePublish with client === null).
    if (packet.will) {
      const read = identities.read(client.conn as tls.TLSSocket);
      if (read.ok) (packet.will as unknown as { enrolldSerial: string }).enrolldSerial = read.identity.serial;
    }
    callback(null, true);
  };

  async function purgeResidue(deviceId: string): Promise<void> {
    const persistence = (aedes as unknown as { persistence?: unknown } | undefined)?.persistence as
      | {
          delWill(client: { id: string; brokerId?: string }): Promise<unknown>;
          cleanSubscriptions(client: { id: string }): Promise<void>;
          outgoingStream(client: { id: string }): AsyncIterable<{ messageId?: number }>;
          outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<unknown>;
          cleanIncoming?(client: { id: string }): Promise<void>;
          createRetainedStream(pattern: string): AsyncIterable<{ topic: string; qos: number }>;
          storeRetained(packet: { topic: string; payload: Buffer; qos: number; retain: boolean; cmd: 'publish' }): Promise<void>;
        }
      | undefined;
    if (!persistence || !aedes || aedes.closed) return;
    const id = { id: deviceId, brokerId: aedes.id };
    await persistence.delWill(id);
    // MQTT-3.1.2-4..5 session state of a clean=false client (Mosquitto CVE-2021-34434: subscriptions survived).
    await persistence.cleanSubscriptions(id);
    const queued: Array<{ messageId?: number }> = [];
    for await (const packet of persistence.outgoingStream(id)) queued.push(packet);
    for (const packet of queued) await persistence.outgoingClearMessageId(id, packet);
    await persistence.cleanIncoming?.(id);
    // Retained messages under the device's own prefix: only it could publish there (Mosquitto CVE-2018-12546).
    const retained: string[] = [];
    for await (const packet of persistence.createRetainedStream(`devices/${deviceId}/#`)) retained.push(packet.topic);
    for (const topic of retained) {
      await persistence.storeRetained({ cmd: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: true });
    }
    if (queued.length + retained.length > 0) log.info({ deviceId, queued: queued.length, retained: retained.length }, 'purged session residue of a revoked device');
  }

  function cut(notices: RevokedNotice[]): void {
    for (const notice of notices) {
      const clients = bySerial.get(notice.serial);
      const closed = clients ? [...clients] : [];
      for (const client of closed) {
        const info = sessions.get(client);
        if (info) info.revoked = true;
        // No will for a revoked device (GHSA-4cmx-hrq9-c23p spirit): drop it before aedes' close would publish it.
        const internals = client as unknown as ClientInternals;
        internals.will = null;
        internals._will = null;
        client.conn.once('close', () => metrics.enforced((Date.now() - notice.atMs) / 1000));
        // A TCP close, at once (DESIGN.md §7: the kick is a close; a reconnect then gets CONNACK 5).
        client.conn.destroy();
      }
      if (closed.length > 0) log.warn({ deviceId: notice.deviceId, serial: notice.serial, sessions: closed.length }, 'revoked: live session closed');
      if (notice.reasonCode !== SUPERSEDED) {
        // After the sockets are gone and aedes has run its close (next turns of the loop).
        setImmediate(() => {
          purgeResidue(notice.deviceId).catch((error: unknown) => log.error({ err: error, deviceId: notice.deviceId }, 'purging session residue failed'));
        });
      }
    }
  }

  const sync = createRevocationSync({
    store: deps.store,
    feed: deps.feed,
    state,
    clock,
    logger: log,
    resyncIntervalMs: config.resyncIntervalMs,
    onRevoked: cut,
    onCrl: applyCrl,
  });

  let started = false;

  return {
    async start(): Promise<{ port: number }> {
      if (started) throw new Error('broker already started');
      started = true;
      if (!deps.tls.extraCrls?.length) {
        log.warn({}, 'no CRL for the issuing CA itself (root ARL): Node checks CRLs for every CA in the chain once one is set');
      }
      aedes = new QuietAedes({
        authenticate,
        authorizePublish,
        authorizeSubscribe,
        authorizeForward,
        preConnect,
        heartbeatInterval: config.heartbeatIntervalMs,
        connectTimeout: config.connectTimeoutMs,
        // MQTT-3.1.3-5 allows longer ids; ours are ≤ 63 characters (DESIGN.md §2).
        maxClientsIdLength: 63,
        ...(deps.persistence ? { persistence: deps.persistence } : {}),
      });
      await aedes.listen();
      // Aedes emits 'error' for failures outside any client (e.g. a refused left-over will in its will sweep); without a
      // listener EventEmitter would throw and take the process down.
      (aedes as unknown as NodeJS.EventEmitter).on('error', (error: Error) => log.warn({ err: error.message }, 'aedes error'));
      aedes.on('clientError', (client: Client, error: Error) => {
        log.debug({ clientId: client.id, err: error.message }, 'client error');
      });
      aedes.on('clientReady', (client: Client) => runHooks(client, (h, ref) => h.onConnected?.(ref)));
      aedes.on('publish', (packet: PublishPacket, client: Client | null) => {
        runHooks(client, (h, ref) => h.onPublish?.(ref, packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)));
      });
      aedes.on('subscribe', (subs: Subscription[], client: Client) => {
        // QoS 128 marks a filter the ACL negated (MQTT-3.9.3).
        const granted = subs.filter((s) => (s.qos as number) !== 128).map((s) => s.topic);
        if (granted.length > 0) runHooks(client, (h, ref) => h.onSubscribed?.(ref, granted));
      });
      // The first sync runs before we listen, so the first handshake already sees the newest CRL.
      await sync.start();
      const broker = aedes;
      server = tls.createServer(
        {
          ...secureOptions(),
          requestCert: true,
          rejectUnauthorized: true,
          // Without it each CONNACK waits ~40 ms for a delayed ACK (DESIGN.md §7).
          noDelay: true,
        },
        (socket) => {
          broker.handle(socket);
        },
      );
      server.on('connection', (socket: Socket) => {
        sockets.add(socket);
        socket.once('close', () => sockets.delete(socket));
      });
      server.on('tlsClientError', (error: Error & { code?: string }) => {
        metrics.refused('tls-handshake');
        log.debug({ err: error.code ?? error.message }, 'TLS handshake refused');
      });
      const srv = server;
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(config.port, config.host, () => {
          srv.off('error', reject);
          resolve();
        });
      });
      const port = (srv.address() as AddressInfo).port;
      log.info({ port, host: config.host, sessionTickets: config.sessionTickets, state: state.status() }, 'MQTT broker listening (mTLS)');
      return { port };
    },

    async stop(): Promise<void> {
      if (!started) return;
      started = false;
      await sync.stop();
      const srv = server;
      const broker = aedes;
      server = undefined;
      const closed = srv ? new Promise<void>((resolve) => srv.close(() => resolve())) : Promise.resolve();
      if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
      aedes = undefined;
    },

    /** The port actually bound (after start). */
    port(): number {
      const address = server?.address();
      return address && typeof address === 'object' ? address.port : 0;
    },

    /** RevocationPublisher for the in-process path: cut at once, without waiting for NOTIFY. */
    revoked(revoked: RevokedCertificate[], crl: StoredCrl | undefined): void {
      const fresh = new Set(state.apply(revoked));
      const notices = revoked
        .filter((r) => fresh.has(normalizeSerial(r.serial)))
        .map((r) => ({ serial: normalizeSerial(r.serial), deviceId: r.deviceId, reasonCode: r.reasonCode, atMs: r.revokedAt.getTime() }));
      if (notices.length > 0) cut(notices);
      if (crl && sync.crlApplied(crl)) applyCrl(crl);
    },

    /** Adds session hooks (late binding: the composition builds them after the broker). */
    addHooks(...more: BrokerHooks[]): void {
      hooks.push(...more);
    },

    /** A server-originated PUBLISH (QoS 1, not retained) to whoever subscribed; authorizeForward still applies. */
    publish(topic: string, payload: Buffer | string, qos: 0 | 1 = 1): Promise<void> {
      const broker = aedes;
      if (!broker || broker.closed) return Promise.reject(new Error('broker not running'));
      const packet = { cmd: 'publish', topic, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos, retain: false, dup: false } as PublishPacket;
      return new Promise((resolve, reject) => broker.publish(packet, (error?: Error) => (error ? reject(error) : resolve())));
    },

    /** True when a live (unrevoked) session uses the certificate with this serial. */
    hasSession(serial: string): boolean {
      return (bySerial.get(normalizeSerial(serial))?.size ?? 0) > 0;
    },

    /** Runs a resync now (tests; the interval does it otherwise). */
    resync: () => sync.syncNow(),
    revocationStatus: () => state.status(),
    connectedDevices: () => aedes?.connectedClients ?? 0,
    /** For tests and diagnostics only. */
    aedes: () => aedes,
  };
}

export type Broker = ReturnType<typeof createBroker>;
