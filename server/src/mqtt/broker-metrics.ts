// Broker metrics on the registry the composition root owns: connected devices, refusals by reason, sessions closed at
// their certificate's notAfter or when their access window closed, and the time from a revocation commit to the cut of
// a live session.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { LimitReason } from './limits.js';

export type RefusalReason =
  | 'revocation-state-unknown'
  | 'no-identity'
  | 'client-id-mismatch'
  | 'username-mismatch'
  | 'not-yet-valid'
  | 'expired'
  | 'revoked'
  | 'superseded'
  | 'not-current'
  | 'unknown'
  | 'registry-lookup-unavailable'
  | 'will-denied'
  | 'unknown-profile'
  | 'outside-window'
  | 'not-a-broker-identity'
  | 'profiles-not-loaded'
  | 'cluster-bus-down'
  | 'tls-handshake'
  | 'other-issuer'
  | 'handshake-timeout'
  | 'pending-per-address'
  | 'pending-total'
  | 'connect-rate';

/** Why a PUBLISH or SUBSCRIBE was refused: the profile's ACL, or a shared subscription (unsupported). */
export type AclDenialReason = 'acl' | 'shared-subscription';

export interface BrokerMetrics {
  refused(reason: RefusalReason): void;
  /** Seconds from the revocation commit to the socket being closed. */
  enforced(seconds: number): void;
  /** A live session was closed because its certificate passed notAfter. */
  sessionExpired(): void;
  /** A live session was closed because its profile's access window closed (at its end, or by a profile update). */
  sessionOutsideWindow(): void;
  aclDenied(action: 'publish' | 'subscribe', reason: AclDenialReason): void;
  /** Subscriptions removed from live sessions because their profile no longer grants them. */
  subscriptionsRemoved(count: number): void;
  /** A device's packet broke one of its limits (limits.ts). */
  limited(reason: LimitReason): void;
  /** A publish waited for a token of its connection's bucket. */
  publishDelayed(): void;
  /** A message to a device waited in its session queue (its outbound window was full). */
  outboundQueued(): void;
  /** A QoS 0 message to a device was dropped because its session queue was full. */
  outboundDropped(): void;
}

export interface BrokerGauges {
  connectedDevices(): number;
  /** Accepted sockets not yet admitted at CONNECT. */
  unauthenticatedConnections(): number;
}

export function createBrokerMetrics(registry: Registry, gauges: BrokerGauges): BrokerMetrics {
  new Gauge({
    name: 'enrolld_broker_connected_devices',
    help: 'Devices with an authenticated MQTT session on this broker process',
    registers: [registry],
    collect() {
      this.set(gauges.connectedDevices());
    },
  });
  new Gauge({
    name: 'enrolld_broker_unauthenticated_connections',
    help: 'Sockets accepted on the MQTT port and not yet admitted at CONNECT (TLS handshake or CONNECT pending)',
    registers: [registry],
    collect() {
      this.set(gauges.unauthenticatedConnections());
    },
  });
  const limitRefusals = new Counter({
    name: 'enrolld_broker_limit_refusals_total',
    help: 'Device packets refused by a per-identity broker limit, by reason (the connection is closed, or SUBACK 0x80); outbound-queue: the session queue was full of QoS 1/2 messages',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const delayed = new Counter({
    name: 'enrolld_broker_publishes_delayed_total',
    help: 'Device PUBLISH packets that waited for a token of their connection\'s rate limit',
    registers: [registry],
  });
  const queued = new Counter({
    name: 'enrolld_broker_outbound_queued_total',
    help: 'Messages to devices that waited in the session queue because the outbound window (QoS 1/2 awaiting acknowledgement) was full',
    registers: [registry],
  });
  const dropped = new Counter({
    name: 'enrolld_broker_outbound_dropped_total',
    help: 'QoS 0 messages to devices dropped because the session queue was full',
    registers: [registry],
  });
  const refusals = new Counter({
    name: 'enrolld_broker_connect_refusals_total',
    help: 'Device connections refused, by reason (TLS handshake failures and CONNACK refusals)',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const enforcement = new Histogram({
    name: 'enrolld_revocation_enforcement_seconds',
    help: 'Time from the revocation commit to the revoked session socket being closed on this broker',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const expired = new Counter({
    name: 'enrolld_broker_sessions_expired_total',
    help: 'Live device sessions closed by this broker when their certificate passed notAfter',
    registers: [registry],
  });
  const outsideWindow = new Counter({
    name: 'enrolld_broker_sessions_outside_window_total',
    help: 'Live sessions closed by this broker because their profile\'s access window closed (at its end or by a profile update)',
    registers: [registry],
  });
  const aclDenials = new Counter({
    name: 'enrolld_broker_acl_denials_total',
    help: 'PUBLISH and SUBSCRIBE packets refused by the profile ACL or as shared subscriptions, by action and reason',
    labelNames: ['action', 'reason'] as const,
    registers: [registry],
  });
  const removed = new Counter({
    name: 'enrolld_broker_subscriptions_removed_total',
    help: 'Subscriptions removed from live sessions because a profile update no longer grants them',
    registers: [registry],
  });
  return {
    aclDenied(action, reason) {
      aclDenials.inc({ action, reason });
    },
    subscriptionsRemoved(count) {
      removed.inc(count);
    },
    sessionExpired() {
      expired.inc();
    },
    sessionOutsideWindow() {
      outsideWindow.inc();
    },
    limited(reason) {
      limitRefusals.inc({ reason });
    },
    publishDelayed() {
      delayed.inc();
    },
    outboundQueued() {
      queued.inc();
    },
    outboundDropped() {
      dropped.inc();
    },
    refused(reason) {
      refusals.inc({ reason });
    },
    enforced(seconds) {
      enforcement.observe(Math.max(0, seconds));
    },
  };
}
