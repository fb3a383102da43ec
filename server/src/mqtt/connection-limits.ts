// The per-identity limits (limits.ts) enforced on live connections, each refused the way MQTT 3.1.1 allows:
//  - packet size: from the fixed header, before the body is buffered; the connection is closed (before CONNECT the
//    default limits apply, after it the identity's);
//  - publishes: a token bucket per connection. A publish without a token waits for one (aedes reads no more of that
//    socket meanwhile, so TCP pushes back on the publisher); one that would wait longer than a full burst closes the
//    connection (MQTT-3.3.5-2: a server may close on a PUBLISH it will not process);
//  - inbound QoS 2 awaiting PUBREL, retained topics and bytes under the device's prefix: the connection is closed;
//  - subscriptions: the filter over the limit gets SUBACK 0x80 (MQTT-3.9.3);
//  - outbound QoS 1/2 awaiting the device's acknowledgement: later messages wait in a bounded session queue
//    (outbound-window.ts).
import type { Aedes, Client, PublishPacket } from 'aedes';
import type { Logger } from 'pino';
import { fullBucket, takeOrOwe, type TokenBucket } from '@enrolld/core/token-bucket.js';
import { inboundAwaitingRelease, inspectIncomingBytes, sessionPersistence } from './aedes-internals.js';
import type { BrokerMetrics } from './broker-metrics.js';
import type { ConnectionLimits, LimitReason, LimitsFor } from './limits.js';
import { createOutboundWindow, type OutboundWindowDeps } from './outbound-window.js';
import { createPacketSizeGuard } from './packet-size-guard.js';
import type { PeerIdentity } from './peer-identity.js';

interface ConnectionState {
  limits: ConnectionLimits;
  /** Set by the first refusal: the connection is closing, and packets still in its last chunk are not counted again. */
  refused: LimitReason | undefined;
  publishes: TokenBucket;
  subscriptions: Set<string>;
}

interface RetainedUsage {
  topics: Map<string, number>;
  bytes: number;
}

export interface ConnectionLimitsDeps {
  limitsFor: LimitsFor;
  /** Limits of a connection not yet admitted. */
  defaults: ConnectionLimits;
  /** The running broker, whose persistence holds the retained messages counted here. */
  aedes(): Aedes | undefined;
  /** Whether a message may still reach a client (aedes' authorizeForward), checked before it takes an outbound place. */
  mayForward: OutboundWindowDeps['mayForward'];
  metrics: Pick<BrokerMetrics, 'limited' | 'publishDelayed' | 'outboundQueued' | 'outboundDropped'>;
  log: Logger;
  now?: () => number;
}

export type PublishVerdict = { ok: true } | { ok: false; reason: LimitReason };

export interface ConnectionLimitsEnforcer {
  /** Every accepted socket, as aedes takes it: the packet-size guard and the outbound window. */
  attach(client: Client): void;
  /** CONNECT admitted: from now on the identity's limits apply. */
  admitted(client: Client, identity: PeerIdentity): void;
  /** Resolves when the publish may proceed, or with the limit it breaks (the caller closes the connection). */
  publish(client: Client, deviceId: string, packet: PublishPacket): Promise<PublishVerdict>;
  /** False when one more topic filter is over the limit (answer SUBACK 0x80). */
  subscribe(client: Client, filter: string): boolean;
  unsubscribed(client: Client, filters: readonly string[]): void;
  /** The device's retained messages were purged (revocation). */
  retainedPurged(deviceId: string): void;
}

const publishRate = (limits: ConnectionLimits) => ({ ratePerSecond: limits.publishRatePerSecond, burst: limits.publishBurst });

export function createConnectionLimits(deps: ConnectionLimitsDeps): ConnectionLimitsEnforcer {
  const { metrics, log } = deps;
  const now = deps.now ?? Date.now;
  const connections = new WeakMap<Client, ConnectionState>();
  const outbound = createOutboundWindow({ mayForward: deps.mayForward, metrics, log });
  /** Retained topics per device; loaded from persistence on a device's first retained publish. */
  const retained = new Map<string, Promise<RetainedUsage>>();

  function stateOf(client: Client): ConnectionState {
    let state = connections.get(client);
    if (!state) {
      state = { limits: deps.defaults, refused: undefined, publishes: fullBucket(publishRate(deps.defaults), now()), subscriptions: new Set() };
      connections.set(client, state);
    }
    return state;
  }

  function refuse(state: ConnectionState, reason: LimitReason, fields: object): PublishVerdict {
    if (state.refused === undefined) {
      state.refused = reason;
      metrics.limited(reason);
      log.info({ ...fields, reason }, 'device over a broker limit; closing the connection');
    }
    return { ok: false, reason };
  }


  async function loadRetained(deviceId: string): Promise<RetainedUsage> {
    const usage: RetainedUsage = { topics: new Map(), bytes: 0 };
    const aedes = deps.aedes();
    if (!aedes) return usage;
    for await (const packet of sessionPersistence(aedes).createRetainedStream(`devices/${deviceId}/#`) as AsyncIterable<{ topic: string; payload?: Buffer }>) {
      const size = packet.payload?.length ?? 0;
      usage.topics.set(packet.topic, size);
      usage.bytes += size;
    }
    return usage;
  }

  function retainedUsage(deviceId: string): Promise<RetainedUsage> {
    let usage = retained.get(deviceId);
    if (!usage) {
      usage = loadRetained(deviceId);
      retained.set(deviceId, usage);
      usage.catch(() => retained.delete(deviceId));
    }
    return usage;
  }

  async function checkRetained(state: ConnectionState, deviceId: string, packet: PublishPacket): Promise<PublishVerdict> {
    const { limits } = state;
    const usage = await retainedUsage(deviceId);
    const size = packet.payload.length;
    const previous = usage.topics.get(packet.topic);
    if (size === 0) {
      // MQTT-3.3.1-10: an empty retained payload removes the topic's retained message.
      if (previous !== undefined) {
        usage.topics.delete(packet.topic);
        usage.bytes -= previous;
        if (usage.topics.size === 0) retained.delete(deviceId);
      }
      return { ok: true };
    }
    if (previous === undefined && usage.topics.size + 1 > limits.maxRetainedMessages) {
      return refuse(state, 'retained-count', { deviceId, topic: packet.topic, retained: usage.topics.size });
    }
    const bytes = usage.bytes - (previous ?? 0) + size;
    if (bytes > limits.maxRetainedBytes) return refuse(state, 'retained-bytes', { deviceId, topic: packet.topic, bytes });
    usage.topics.set(packet.topic, size);
    usage.bytes = bytes;
    return { ok: true };
  }

  return {
    attach(client) {
      const state = stateOf(client);
      const guard = createPacketSizeGuard(() => state.limits.maxPacketBytes);
      inspectIncomingBytes(client, (chunk) => {
        const size = guard.oversize(chunk);
        if (size === undefined) return true;
        metrics.limited('packet-size');
        log.info({ clientId: client.id, size, limit: state.limits.maxPacketBytes }, 'MQTT packet over the size limit; closing the connection');
        client.conn.destroy();
        return false;
      });
      outbound.attach(client, () => state.limits);
    },

    admitted(client, identity) {
      const state = stateOf(client);
      state.limits = deps.limitsFor(identity);
      state.publishes.tokens = Math.min(state.publishes.tokens, state.limits.publishBurst);
    },

    async publish(client, deviceId, packet) {
      const state = stateOf(client);
      if (state.refused !== undefined) return { ok: false, reason: state.refused };
      const { limits } = state;
      if (packet.qos === 2 && packet.messageId !== undefined) {
        const awaiting = inboundAwaitingRelease(client);
        if (!awaiting.has(packet.messageId) && awaiting.size >= limits.maxInflight) {
          return refuse(state, 'inflight', { deviceId, awaiting: awaiting.size });
        }
      }
      // Milliseconds until the publish may go (its debt is paid back at the rate), undefined past a burst of debt.
      const wait = takeOrOwe(state.publishes, publishRate(limits), now());
      if (wait === undefined) return refuse(state, 'publish-rate', { deviceId });
      if (wait > 0) {
        metrics.publishDelayed();
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
      return packet.retain ? checkRetained(state, deviceId, packet) : { ok: true };
    },

    subscribe(client, filter) {
      const state = stateOf(client);
      if (state.subscriptions.has(filter)) return true;
      if (state.subscriptions.size >= state.limits.maxSubscriptions) {
        metrics.limited('subscriptions');
        log.info({ clientId: client.id, filter, subscriptions: state.subscriptions.size }, 'subscription over the limit refused (SUBACK 0x80)');
        return false;
      }
      state.subscriptions.add(filter);
      return true;
    },

    unsubscribed(client, filters) {
      const state = connections.get(client);
      for (const filter of filters) state?.subscriptions.delete(filter);
    },

    retainedPurged(deviceId) {
      retained.delete(deviceId);
    },
  };
}
