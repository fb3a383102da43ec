// What one device identity may hold on the broker, and the resolution of those limits per identity. Every limit is a
// value of `limitsFor(identity)`, resolved once when the session is admitted, so a per-profile override only has to
// supply another resolver (BrokerDeps.limitsFor); the settings give the defaults.
// Defaults follow the published quotas of AWS IoT Core's message broker (payload 128 KB, 50 subscriptions per
// connection, 100 publishes per second per connection, 100 unacknowledged in-flight messages per client, one CONNECT
// per second per client id) and EMQX (max_awaiting_rel 100, max_inflight 32, max_mqueue_len 1000). Neither publishes
// a per-device retained quota; ours bounds one device's retained store to a handful of maximum-size payloads. The
// CONNECT bucket holds a burst of 10, so a device that reconnects a few times after a network fault is not refused.
import type { PeerIdentity } from './peer-identity.js';

export interface ConnectionLimits {
  /** Largest MQTT control packet a device may send, fixed header included; a larger one closes the connection. */
  maxPacketBytes: number;
  /** Retained topics under the device's prefix, and their payload bytes in all. */
  maxRetainedMessages: number;
  maxRetainedBytes: number;
  /** Topic filters one connection may hold; one more gets SUBACK 0x80. */
  maxSubscriptions: number;
  /** Token bucket of PUBLISH packets: refilled at `publishRatePerSecond`, holding at most `publishBurst`. */
  publishRatePerSecond: number;
  publishBurst: number;
  /** Inbound QoS 2 PUBLISH awaiting PUBREL (MQTT-4.3.3), one connection. */
  maxInflight: number;
  /** Outbound QoS 1/2 PUBLISH awaiting the device's PUBACK or PUBCOMP, one connection (outbound-window.ts). */
  maxOutboundInflight: number;
  /** Messages waiting for room in that window: the connection's session queue. */
  maxQueuedMessages: number;
  /** Token bucket of CONNECTs per identity: refilled at `connectRatePerSecond`, holding at most `connectBurst`. */
  connectRatePerSecond: number;
  connectBurst: number;
}

export type LimitsFor = (identity: PeerIdentity) => ConnectionLimits;

export const defaultConnectionLimits: Readonly<ConnectionLimits> = Object.freeze({
  maxPacketBytes: 128 * 1024,
  maxRetainedMessages: 32,
  maxRetainedBytes: 1024 * 1024,
  maxSubscriptions: 50,
  publishRatePerSecond: 100,
  publishBurst: 200,
  maxInflight: 100,
  maxOutboundInflight: 32,
  maxQueuedMessages: 1000,
  connectRatePerSecond: 1,
  connectBurst: 10,
});

/** Why a device's packet was refused, on `enrolld_broker_limit_refusals_total{reason}`. */
export type LimitReason = 'packet-size' | 'retained-count' | 'retained-bytes' | 'subscriptions' | 'publish-rate' | 'inflight' | 'outbound-queue';
