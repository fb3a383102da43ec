// The outbound window of one connection: at most `maxOutboundInflight` QoS 1 and 2 PUBLISH that the broker sent await
// the device's PUBACK (QoS 1) or PUBCOMP (QoS 2) (MQTT 3.1.1 §4.3.2, §4.3.3). aedes 1.2 has no such window: it writes
// every message at once. Here a message beyond the window waits in the connection's session queue, in arrival order,
// and leaves it when an acknowledgement frees a place (as EMQX's max_inflight and message queue do). Once something
// waits, QoS 0 messages queue behind it too, so the order of delivery is the order of arrival.
// The queue holds at most `maxQueuedMessages`. When it is full:
//  - a QoS 0 message is dropped: the arriving one, or the oldest queued one to make room for a QoS 1/2 message
//    (QoS 0 is at most once, and only optionally part of the session state, MQTT 3.1.1 §3.1.2.4, §4.3.1);
//  - a QoS 1/2 message that finds no QoS 0 to drop ends the connection: MQTT 3.1.1 allows a server to discard
//    session state as an automated response to a defined condition, which ends the session (§4.1), never to drop a
//    QoS 1/2 message of a live one. A persistent session keeps what aedes persisted for it (delivered on reconnect).
// Retained messages replayed on SUBSCRIBE wait like the others, and the replay waits for each to be sent.
import type { Client, PublishPacket } from 'aedes';
import type { Logger } from 'pino';
import {
  assignMessageId,
  deliverClaimed,
  deliveredQoS,
  isFirstDelivery,
  observeIncomingPackets,
  wrapDeliveries,
  type Deliver,
} from './aedes-internals.js';
import type { BrokerMetrics } from './broker-metrics.js';
import type { ConnectionLimits } from './limits.js';

interface Waiting {
  packet: PublishPacket;
  qos: 0 | 1 | 2;
  deliver: Deliver;
  /** The retained replay's callback, held until the message is sent (the replay sends one at a time). */
  release: (() => void) | undefined;
}

export interface OutboundWindowDeps {
  /** What aedes' authorizeForward answers: the packet may still reach this client (its session is live). */
  mayForward(client: Client, packet: PublishPacket): boolean;
  metrics: Pick<BrokerMetrics, 'limited' | 'outboundQueued' | 'outboundDropped'>;
  log: Logger;
}

const noop = () => undefined;

/** One connection's window: what it sent and awaits, and what waits to be sent. A class, not closures made per connection
 * (the server runs under tsx, whose keepNames gives each named closure a defineProperty call on every CONNECT). */
class ConnectionWindow {
  /** message id → QoS of each message sent and not yet acknowledged */
  private readonly inflight = new Map<number, 1 | 2>();
  private readonly queue: Waiting[] = [];
  private ended = false;

  constructor(
    private readonly client: Client,
    private readonly limits: () => Pick<ConnectionLimits, 'maxOutboundInflight' | 'maxQueuedMessages'>,
    private readonly deps: OutboundWindowDeps,
  ) {}

  /** aedes' delivery of `packet` to this client, through the window. */
  deliver(original: Deliver, kind: 'qos0' | 'qos', packet: PublishPacket, done: () => void): void {
    const { client, inflight, queue } = this;
    // aedes' own path for what it sends nothing of: a duplicate (the packet matched another of the client's
    // subscriptions), or anything once the connection ended.
    if (this.ended || !isFirstDelivery(client, packet, false)) return original(packet, done);
    const qos = kind === 'qos0' ? 0 : deliveredQoS(client, packet);
    // A retained message replayed on SUBSCRIBE: in MQTT 3.1.1 only those reach a client with the RETAIN flag.
    const item: Waiting = { packet, qos, deliver: original, release: packet.retain ? done : undefined };
    const { maxOutboundInflight, maxQueuedMessages } = this.limits();
    if (queue.length === 0 && (qos === 0 || inflight.size < maxOutboundInflight)) return this.send(item, done);
    // Recorded as delivered now, in arrival order, as aedes' dedupe would have.
    isFirstDelivery(client, packet, true);
    if (queue.length >= maxQueuedMessages) return this.overflow(item, done);
    this.enqueue(item, done);
  }

  /** A packet from the client: a PUBACK or PUBCOMP frees its message's place. */
  acknowledged(packet: { cmd: string; messageId?: number }): void {
    if (packet.messageId === undefined) return;
    const qos = this.inflight.get(packet.messageId);
    if ((packet.cmd === 'puback' && qos === 1) || (packet.cmd === 'pubcomp' && qos === 2)) {
      this.inflight.delete(packet.messageId);
      this.drain();
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    for (const item of this.queue.splice(0)) item.release?.();
  }

  private send(item: Waiting, done: () => void): void {
    if (item.qos > 0 && this.deps.mayForward(this.client, item.packet)) {
      const messageId = assignMessageId(this.client, item.packet, (id) => this.inflight.has(id));
      this.inflight.set(messageId, item.qos as 1 | 2);
    }
    item.deliver(item.packet, done);
  }

  private drain(): void {
    const { maxOutboundInflight } = this.limits();
    const { queue } = this;
    while (queue.length > 0 && !this.ended) {
      const head = queue[0]!;
      if (head.qos > 0 && this.inflight.size >= maxOutboundInflight) return;
      queue.shift();
      const release = head.release ?? noop;
      // Claimed when it was queued: aedes' dedupe lets it through this once.
      deliverClaimed(this.client, head.packet, () => this.send(head, noop));
      release();
    }
  }

  private overflow(item: Waiting, done: () => void): void {
    const { metrics, log } = this.deps;
    const { maxQueuedMessages } = this.limits();
    if (item.qos === 0) {
      metrics.outboundDropped();
      return done();
    }
    const oldestQos0 = this.queue.findIndex((waiting) => waiting.qos === 0);
    if (oldestQos0 >= 0) {
      const [dropped] = this.queue.splice(oldestQos0, 1);
      dropped?.release?.();
      metrics.outboundDropped();
      return this.enqueue(item, done);
    }
    metrics.limited('outbound-queue');
    log.info({ clientId: this.client.id, queued: maxQueuedMessages }, 'session queue full of unacknowledged QoS 1/2 messages; ending the session');
    this.end();
    done();
    this.client.conn.destroy();
  }

  private enqueue(item: Waiting, done: () => void): void {
    this.queue.push(item);
    this.deps.metrics.outboundQueued();
    if (item.release === undefined) done();
  }
}

export function createOutboundWindow(deps: OutboundWindowDeps) {
  return {
    /** Takes over the client's deliveries; `limits` is read per message (the identity's, once admitted). */
    attach(client: Client, limits: () => Pick<ConnectionLimits, 'maxOutboundInflight' | 'maxQueuedMessages'>): void {
      const window = new ConnectionWindow(client, limits, deps);
      wrapDeliveries(client, (original, kind): Deliver => (packet, done) => window.deliver(original, kind, packet, done));
      observeIncomingPackets(client, (packet) => window.acknowledged(packet));
      client.conn.once('close', () => window.end());
    },
  };
}

export type OutboundWindow = ReturnType<typeof createOutboundWindow>;
