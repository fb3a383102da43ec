// Who gets an MQTT session: the checks of CONNECT, after the TLS handshake verified the chain (tls-listener.ts).
// Refusals are CONNACK return codes (MQTT 3.1.1 §3.2.2.3), counted by reason, and the state is fail closed: while
// revocation is unknown nobody is admitted. A certificate is admitted only if the registry holds it as its device's
// current certificate or that one's predecessor (docs/architecture.md §7), and only inside its profile's access window;
// every other certificate of ours gets CONNACK 5 with its reason (revoked, superseded, expired, not-current, unknown,
// unknown-profile, outside-window, not-a-broker-identity for an admin certificate) and the connection is closed.
import type { Socket } from 'node:net';
import type tls from 'node:tls';
import type { AedesOptions, AuthenticateError, Client } from 'aedes';
import type { Logger } from 'pino';
import { CONNACK } from '@enrolld/protocol';
import type { RegistryLookup } from '@enrolld/core/admission/registry-lookup.js';
import type { AdmissionRegistry, RegistryDecision } from '@enrolld/core/admission/registry.js';
import type { Clock } from '@enrolld/core/clock.js';
import type { RevocationState } from '@enrolld/core/revocation/revocation-state.js';
import { stampWillSerial, willUnderAuthentication } from './aedes-internals.js';
import type { BrokerMetrics, RefusalReason } from './broker-metrics.js';
import type { ConnectRateLimit } from './connect-rate.js';
import type { LimitsFor } from './limits.js';
import type { PeerIdentity, PeerIdentityReader } from './peer-identity.js';
import type { SessionExpiry } from './session-expiry.js';
import type { SessionIndex } from './session-index.js';
import { VALIDITY_ERRORS } from './tls-listener.js';
import type { ProfileAcls } from '@enrolld/core/acl/profile-acls.js';

export interface AdmissionDeps {
  state: Pick<RevocationState, 'status'>;
  registry: Pick<AdmissionRegistry, 'admit' | 'successorAdmitted' | 'currentOf'>;
  lookup: RegistryLookup;
  identities: PeerIdentityReader;
  sessions: Pick<SessionIndex, 'admit'>;
  /** The compiled ACL of each profile: a certificate naming a profile this broker does not hold is refused. */
  acls: Pick<ProfileAcls, 'get'>;
  /** False until the profiles were loaded once: every CONNECT gets CONNACK 3 meanwhile, as with an unknown state. */
  profilesLoaded(): boolean;
  /**
   * False while a cluster node has lost its bus (Redis) or has not yet resynced after it came back: every CONNECT gets
   * CONNACK 3 `cluster-bus-down` (docs/architecture.md §6, "Broker cluster"). Always true on a single node.
   */
  clusterReady?: (() => boolean) | undefined;
  expiry: SessionExpiry;
  /** CONNECTs per identity; each identity's rate comes from its limits. */
  connectRate: Pick<ConnectRateLimit, 'check'>;
  limitsFor: LimitsFor;
  /** Runs for each admitted session, after the index and the expiry know it (the listener and the limits). */
  admitted(client: Client, identity: PeerIdentity): void;
  metrics: BrokerMetrics;
  clock: Clock;
  log: Logger;
  /** Each refusal, as it happens (the console's live events); after the metric and the log. */
  onRefused?: ((refusal: ConnectRefusal) => void) | undefined;
}

/** A refused CONNECT: the device and serial when the certificate named them. */
export interface ConnectRefusal {
  reason: RefusalReason;
  deviceId: string | null;
  serial: string | null;
}

type Done = (error: AuthenticateError | null, success: boolean | null) => void;

/** A device that keeps retrying with a refused certificate is logged once per this window. */
const REFUSAL_LOG_WINDOW_MS = 60_000;
/** Bound on the devices remembered for that window. */
const REFUSAL_LOG_MAX_DEVICES = 10_000;

const REFUSAL_MESSAGES: Record<string, string> = {
  revoked: 'revoked certificate attempted connection',
  superseded: 'revoked certificate attempted connection',
  expired: 'expired certificate refused',
  'not-yet-valid': 'not yet valid certificate refused',
  'not-current': 'not-current certificate refused',
  unknown: 'unknown certificate refused',
  'unknown-profile': 'certificate of an unknown profile refused',
  'outside-window': 'connection outside its profile\'s access window refused',
  'not-a-broker-identity': 'admin certificate refused at the broker',
};

function authError(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export function createAdmission(deps: AdmissionDeps): Pick<Required<AedesOptions>, 'authenticate' | 'preConnect'> {
  const { state, registry, lookup, identities, metrics, clock, log } = deps;
  let lastUnknownLogAt = 0;
  /** deviceId → when its last certificate refusal was logged (insertion order = age) */
  const refusalLoggedAt = new Map<string, number>();

  function refuse(client: Client, done: Done, code: number, reason: RefusalReason, fields: object, message: string): void {
    metrics.refused(reason);
    if (reason === 'cluster-bus-down') {
      // Logged once per outage by the cluster bus and the broker (lost, resynced): counted here only.
    } else if (reason === 'revocation-state-unknown' || reason === 'registry-lookup-unavailable' || reason === 'profiles-not-loaded' || reason === 'connect-rate') {
      // One line per second at most: a reconnect storm (an outage, a device in a loop) must not flood the log.
      const now = Date.now();
      if (now - lastUnknownLogAt >= 1000) {
        lastUnknownLogAt = now;
        log.warn({ ...fields, clientId: client.id }, message);
      }
    } else {
      log.info({ ...fields, clientId: client.id, reason }, message);
    }
    const named = fields as { deviceId?: string; serial?: string };
    deps.onRefused?.({ reason, deviceId: named.deviceId ?? null, serial: named.serial ?? null });
    done(authError(code, message), false);
  }

  /** CONNACK 5 for a certificate of ours that may not connect: one structured event per device per window. */
  function refuseCertificate(client: Client, done: Done, reason: RefusalReason, identity: PeerIdentity): void {
    metrics.refused(reason);
    const now = clock.now().getTime();
    const last = refusalLoggedAt.get(identity.deviceId);
    if (last === undefined || now - last >= REFUSAL_LOG_WINDOW_MS) {
      refusalLoggedAt.delete(identity.deviceId);
      if (refusalLoggedAt.size >= REFUSAL_LOG_MAX_DEVICES) {
        const oldest = refusalLoggedAt.keys().next().value;
        if (oldest !== undefined) refusalLoggedAt.delete(oldest);
      }
      refusalLoggedAt.set(identity.deviceId, now);
      const peer = (client.conn as Socket).remoteAddress;
      log.warn({ deviceId: identity.deviceId, serial: identity.serial, reason, peer }, REFUSAL_MESSAGES[reason] ?? 'certificate refused');
    }
    deps.onRefused?.({ reason, deviceId: identity.deviceId, serial: identity.serial });
    done(authError(CONNACK.notAuthorized, `not authorized: ${reason}`), false);
  }

  function finish(client: Client, done: Done, identity: PeerIdentity, decision: RegistryDecision, via: 'registry' | 'lookup'): void {
    if (!decision.ok) return refuseCertificate(client, done, decision.reason, identity);
    // The profile named in the certificate, at its current version, and of the certificate's kind.
    const profile = deps.acls.get(identity.profile);
    if (!profile || profile.kind !== identity.kind) return refuseCertificate(client, done, 'unknown-profile', identity);
    // The profile's access window (docs/architecture.md §6): outside it, CONNACK 5 like any other certificate refusal.
    if (profile.access && !profile.access.stateAt(clock.now().getTime()).open) return refuseCertificate(client, done, 'outside-window', identity);
    // The will goes through the same topic ACL as a PUBLISH (GHSA-4cmx-hrq9-c23p). Refusing it here tells the device
    // at once, instead of silently dropping the will when the session dies.
    const will = willUnderAuthentication(client);
    if (will && !profile.acl.canPublish(identity.deviceId, will.topic, identity.group)) {
      const fields = { deviceId: identity.deviceId, serial: identity.serial, profile: identity.profile, topic: will.topic };
      return refuse(client, done, CONNACK.notAuthorized, 'will-denied', fields, 'refusing CONNECT: the profile ACL does not allow the will topic');
    }
    // aedes authenticates a macrotask after it parsed CONNECT (and a registry lookup takes a round trip): a connection
    // that closed meanwhile is not admitted. Its close has been handled, so a session indexed now would never be removed
    // (the serial would count as connected, and the expiry timer would hold the client until notAfter).
    if (client.closed || client.conn.destroyed) return done(authError(CONNACK.serverUnavailable, 'connection closed during admission'), false);
    // A predecessor admitted during the rotation overlap (a device that reconnects between renewing and switching): rare,
    // and the line that explains an old certificate seen after its successor connected.
    const current = registry.currentOf(identity.deviceId);
    if (current !== identity.serial) {
      log.info({ deviceId: identity.deviceId, serial: identity.serial, currentSerial: current, via }, 'predecessor admitted (rotation overlap)');
    }
    // The rotation overlap ends with this session (docs/architecture.md §8): the predecessor is refused here at once,
    // not only when its supersede has committed.
    registry.successorAdmitted(identity.serial, identity.deviceId);
    deps.sessions.admit(client, identity);
    deps.expiry.watch(client, identity);
    deps.admitted(client, identity);
    done(null, true);
  }

  const authenticate: Required<AedesOptions>['authenticate'] = (client, username, _password, done) => {
    const status = state.status();
    if (!status.known) {
      // Code 3: the service is unavailable, try later. Admitting would let a revoked certificate in.
      return refuse(client, done, CONNACK.serverUnavailable, 'revocation-state-unknown', { why: status.reason }, 'refusing CONNECT: revocation state unknown');
    }
    if (deps.clusterReady && !deps.clusterReady()) {
      // Code 3 as well: the shared session store is out of reach, so the one-session rule, a persistent session and the
      // purge of a revoked device's residue cannot be kept. The loss was logged once by the bus; no line per CONNECT.
      return refuse(client, done, CONNACK.serverUnavailable, 'cluster-bus-down', {}, 'refusing CONNECT: cluster bus down');
    }
    if (!deps.profilesLoaded()) {
      // Code 3 too: without the profiles no certificate's rights are known.
      return refuse(client, done, CONNACK.serverUnavailable, 'profiles-not-loaded', {}, 'refusing CONNECT: profiles not loaded');
    }
    const socket = client.conn as tls.TLSSocket;
    const read = identities.read(socket);
    if (!read.ok) return refuse(client, done, CONNACK.notAuthorized, 'no-identity', { why: read.reason }, 'refusing CONNECT: no device identity in the client certificate');
    const identity = read.identity;
    // An admin certificate is for the admin API only: it names no device or service, whatever else it carries.
    if (identity.kind === 'admin') return refuseCertificate(client, done, 'not-a-broker-identity', identity);
    const fields = { deviceId: identity.deviceId, serial: identity.serial };
    // Before anything else this identity's CONNECT costs (connect-rate.ts). The refusal is held until a token is due.
    const rate = deps.connectRate.check(identity.deviceId, deps.limitsFor(identity));
    if (!rate.ok) {
      const timer = setTimeout(() => refuse(client, done, CONNACK.serverUnavailable, 'connect-rate', fields, 'refusing CONNECT: over the identity\'s CONNECT rate'), rate.delayMs);
      client.conn.once('close', () => clearTimeout(timer));
      return;
    }
    // The clientId must equal the identity from the certificate. An empty clientId was replaced by aedes with
    // "aedes_<uuid>", so it fails here too. MQTT-3.1.3-9: refuse with code 2 (identifier rejected).
    if (client.id !== identity.deviceId) {
      return refuse(client, done, CONNACK.identifierRejected, 'client-id-mismatch', fields, 'refusing CONNECT: clientId is not the certificate identity');
    }
    if (username !== undefined && username !== '' && username !== identity.deviceId) {
      return refuse(client, done, CONNACK.badUsernameOrPassword, 'username-mismatch', fields, 'refusing CONNECT: username names another device');
    }
    // RFC 5280 §4.1.2.5, both ends inclusive. The listener lets a certificate of ours through whose only fault is its
    // validity period (so it gets this answer), and a resumed session was not checked at all.
    const now = clock.now().getTime();
    const timeFault = socket.authorized === false && VALIDITY_ERRORS.has(String(socket.authorizationError));
    if (now > identity.notAfter || (timeFault && String(socket.authorizationError) === 'CERT_HAS_EXPIRED')) {
      return refuseCertificate(client, done, 'expired', identity);
    }
    if (now < identity.notBefore || timeFault) return refuseCertificate(client, done, 'not-yet-valid', identity);
    const decision = registry.admit(identity.serial, identity.deviceId, now);
    if (decision.ok || (decision.reason !== 'unknown' && decision.reason !== 'not-current')) return finish(client, done, identity, decision, 'registry');
    // Not in the registry: perhaps committed a moment ago on another process, its NOTIFY still on the way.
    lookup.refresh(identity.deviceId, identity.serial).then((outcome) => {
      if (outcome === 'unavailable') {
        return refuse(client, done, CONNACK.serverUnavailable, 'registry-lookup-unavailable', fields, 'refusing CONNECT: certificate not in the registry and the store could not be asked');
      }
      finish(client, done, identity, registry.admit(identity.serial, identity.deviceId, clock.now().getTime()), 'lookup');
    }, (error: unknown) => {
      log.error({ err: error, ...fields }, 'registry lookup failed');
      refuse(client, done, CONNACK.serverUnavailable, 'registry-lookup-unavailable', fields, 'refusing CONNECT: registry lookup failed');
    });
  };

  const preConnect: Required<AedesOptions>['preConnect'] = (client, packet, callback) => {
    // Stamp the will with the connection's serial before aedes persists it, so a will left behind by a dead broker
    // can still be checked against revocation (packet-authorization.ts, client === null).
    if (packet.will) {
      const read = identities.read(client.conn as tls.TLSSocket);
      if (read.ok) stampWillSerial(packet.will, read.identity.serial, read.identity.profile, read.identity.group);
    }
    callback(null, true);
  };

  return { authenticate, preConnect };
}
