// Who gets an MQTT session: the checks of CONNECT, after the TLS handshake verified the chain. Refusals are CONNACK
// return codes (MQTT 3.1.1 §3.2.2.3), counted by reason, and the state is fail closed: while revocation is unknown
// nobody is admitted.
import type tls from 'node:tls';
import type { AedesOptions, AuthenticateError, Client } from 'aedes';
import type { Logger } from 'pino';
import { CONNACK } from '@enrolld/protocol';
import type { Clock } from '@enrolld/core/clock.js';
import type { RevocationState } from '@enrolld/core/revocation/revocation-state.js';
import { stampWillSerial, willUnderAuthentication } from './aedes-internals.js';
import type { BrokerMetrics, RefusalReason } from './broker-metrics.js';
import type { PeerIdentityReader } from './peer-identity.js';
import type { SessionIndex } from './session-index.js';
import { canPublish } from './topic-acl.js';

export interface AdmissionDeps {
  state: Pick<RevocationState, 'status' | 'isRevoked'>;
  identities: PeerIdentityReader;
  sessions: Pick<SessionIndex, 'admit'>;
  metrics: BrokerMetrics;
  clock: Clock;
  log: Logger;
}

type Done = (error: AuthenticateError | null, success: boolean | null) => void;

function authError(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

export function createAdmission(deps: AdmissionDeps): Pick<Required<AedesOptions>, 'authenticate' | 'preConnect'> {
  const { state, identities, metrics, clock, log } = deps;
  let lastUnknownLogAt = 0;

  function refuse(client: Client, done: Done, code: number, reason: RefusalReason, fields: object, message: string): void {
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

  const authenticate: Required<AedesOptions>['authenticate'] = (client, username, _password, done) => {
    const status = state.status();
    if (!status.known) {
      // Code 3: the service is unavailable, try later. Admitting would let a revoked certificate in.
      return refuse(client, done, CONNACK.serverUnavailable, 'revocation-state-unknown', { why: status.reason }, 'refusing CONNECT: revocation state unknown');
    }
    const read = identities.read(client.conn as tls.TLSSocket);
    if (!read.ok) return refuse(client, done, CONNACK.notAuthorized, 'no-identity', { why: read.reason }, 'refusing CONNECT: no device identity in the client certificate');
    const identity = read.identity;
    const fields = { deviceId: identity.deviceId, serial: identity.serial };
    // The clientId must equal the identity from the certificate. An empty clientId was replaced by aedes with
    // "aedes_<uuid>", so it fails here too. MQTT-3.1.3-9: refuse with code 2 (identifier rejected).
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
    // A resumed TLS session skipped the CRL, so this is the check that makes resumption safe.
    if (state.isRevoked(identity.serial)) {
      return refuse(client, done, CONNACK.notAuthorized, 'revoked', fields, 'refusing CONNECT: certificate revoked');
    }
    // The will goes through the same topic ACL as a PUBLISH (GHSA-4cmx-hrq9-c23p). Refusing it here tells the device
    // at once, instead of silently dropping the will when the session dies.
    const will = willUnderAuthentication(client);
    if (will && !canPublish(identity.deviceId, will.topic)) {
      return refuse(client, done, CONNACK.notAuthorized, 'will-denied', { ...fields, topic: will.topic }, 'refusing CONNECT: will topic outside the device prefix');
    }
    deps.sessions.admit(client, identity);
    done(null, true);
  };

  const preConnect: Required<AedesOptions>['preConnect'] = (client, packet, callback) => {
    // Stamp the will with the connection's serial before aedes persists it, so a will left behind by a dead broker
    // can still be checked against revocation (packet-authorization.ts, client === null).
    if (packet.will) {
      const read = identities.read(client.conn as tls.TLSSocket);
      if (read.ok) stampWillSerial(packet.will, read.identity.serial);
    }
    callback(null, true);
  };

  return { authenticate, preConnect };
}
