// What an admitted session may do, packet by packet: PUBLISH and SUBSCRIBE as its profile's compiled ACL says (looked up
// by name per packet, so a profile update applies from the next packet), nothing at all once its certificate is
// revoked, shared subscriptions refused explicitly, and wills left by a broker that died checked like a PUBLISH.
import type { Aedes, AedesOptions, Subscription } from 'aedes';
import type { Logger } from 'pino';
import type { ProfileAcls } from '@enrolld/core/acl/profile-acls.js';
import { isSharedSubscription } from '@enrolld/core/acl/compiled-acl.js';
import { BUILTIN_PROFILES } from '@enrolld/protocol';
import type { RevocationState } from '@enrolld/core/revocation/revocation-state.js';
import { leftOverWill, sessionPersistence } from './aedes-internals.js';
import type { BrokerMetrics } from './broker-metrics.js';
import type { ConnectionLimitsEnforcer } from './connection-limits.js';
import type { SessionIndex } from './session-index.js';

export interface PacketAuthorizationDeps {
  state: Pick<RevocationState, 'status' | 'isRevoked'>;
  sessions: Pick<SessionIndex, 'liveSessionOf'>;
  acls: Pick<ProfileAcls, 'get'>;
  metrics: Pick<BrokerMetrics, 'aclDenied'>;
  limits: Pick<ConnectionLimitsEnforcer, 'publish' | 'subscribe'>;
  /** The running broker, to drop a refused left-over will from its persistence. */
  aedes(): Aedes | undefined;
  log: Logger;
}

export function createPacketAuthorization(
  deps: PacketAuthorizationDeps,
): Pick<Required<AedesOptions>, 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'> {
  const { state, sessions, acls, metrics, limits, log } = deps;

  const authorizePublish: Required<AedesOptions>['authorizePublish'] = (client, packet, callback) => {
    if (client === null) {
      // A will left in persistence by a broker that died (Aedes #769): it carries the serial and profile stamped at
      // CONNECT (a will stamped before profiles existed is a device's).
      const will = leftOverWill(packet);
      const acl = acls.get(will.profile ?? BUILTIN_PROFILES.device)?.acl;
      const ok = will.clientId !== undefined && will.serial !== undefined && acl !== undefined &&
        !state.isRevoked(will.serial) && state.status().known && acl.canPublish(will.clientId, packet.topic, will.group);
      if (!ok) {
        log.info({ deviceId: will.clientId, serial: will.serial, topic: packet.topic }, 'left-over will refused');
        // Aedes deletes a will only after publishing it; drop a refused one here so it is not retried forever.
        const aedes = deps.aedes();
        if (will.clientId !== undefined && aedes) sessionPersistence(aedes).delWill({ id: will.clientId }).catch(() => undefined);
      }
      return callback(ok ? null : new Error('will not authorized'));
    }
    const session = sessions.liveSessionOf(client);
    if (!session || state.isRevoked(session.identity.serial)) return callback(new Error('not authorized'));
    const { deviceId, profile, group } = session.identity;
    if (!acls.get(profile)?.acl.canPublish(deviceId, packet.topic, group)) {
      // An error closes the connection (MQTT-3.3.5-2 leaves the choice to the server; aedes disconnects).
      metrics.aclDenied('publish', 'acl');
      log.info({ deviceId, profile, topic: packet.topic }, 'publish denied by the profile ACL; closing the connection');
      return callback(new Error('topic not authorized'));
    }
    limits.publish(client, deviceId, packet).then((verdict) => {
      if (!verdict.ok) return callback(new Error(`over the broker limit: ${verdict.reason}`));
      // A publish that waited for a token is checked again: the session may have been revoked meanwhile.
      const live = sessions.liveSessionOf(client);
      callback(live && !state.isRevoked(live.identity.serial) ? null : new Error('not authorized'));
    }, (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))));
  };

  const authorizeSubscribe: Required<AedesOptions>['authorizeSubscribe'] = (client, sub: Subscription, callback) => {
    const session = sessions.liveSessionOf(client);
    if (!session) return callback(null, null);
    const { deviceId, profile, group } = session.identity;
    if (isSharedSubscription(sub.topic)) {
      // aedes 1.x has no shared subscriptions: refused explicitly, never treated as a plain topic.
      metrics.aclDenied('subscribe', 'shared-subscription');
      log.info({ deviceId, profile, filter: sub.topic }, 'shared subscription refused (not supported); SUBACK 0x80');
      return callback(null, null);
    }
    if (!acls.get(profile)?.acl.canSubscribe(deviceId, sub.topic, group)) {
      // Negate (SUBACK 0x80, MQTT-3.9.3); aedes then sends no retained messages for it (Aedes #719/#720).
      metrics.aclDenied('subscribe', 'acl');
      log.info({ deviceId, profile, filter: sub.topic }, 'subscribe denied by the profile ACL; SUBACK 0x80');
      return callback(null, null);
    }
    callback(null, limits.subscribe(client, sub.topic) ? sub : null);
  };

  // Nothing reaches a session whose certificate was revoked, in the moments before its socket is gone.
  const authorizeForward: Required<AedesOptions>['authorizeForward'] = (client, packet) => (sessions.liveSessionOf(client) ? packet : null);

  return { authorizePublish, authorizeSubscribe, authorizeForward };
}
