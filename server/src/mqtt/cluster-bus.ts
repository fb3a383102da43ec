// The broker cluster on Redis (docs/architecture.md §6, "Broker cluster"): aedes' own cluster packages, no home-made
// bus. mqemitter-redis carries every publish and aedes' $SYS traffic (heartbeats, client takeover, subscription
// broadcasts) between nodes over Redis pub/sub; aedes-persistence-redis keeps sessions, queued QoS 1/2 messages,
// retained messages and wills in Redis, so a device may resume its session on any node. Postgres stays the record:
// nothing of admission or revocation lives here.
//
// Two channels, each an mqemitter-redis of its own (a subscriber and a publisher connection), behind one emitter that
// routes by topic: the control channel carries aedes' `$SYS/` topics (what one session per identity, MQTT-3.1.4-2, and
// the shared subscriptions depend on), the data channel every application message. A node that reads its data more
// slowly than the cluster publishes it is dropped by Redis (`client-output-buffer-limit pubsub`): that must cost
// cross-node delivery for a moment, not admission. So the control channel and the persistence (`store`) are what the
// broker's admission waits for (`connected()`, `onChange`); the data channel only degrades delivery.
//
// Every channel and key carries the prefix, so clusters (or tests) sharing a Redis never see each other's traffic.
// The bus is watched through the connections we hand to both packages: a lost channel is logged once, counted, and
// shown on `enrolld_broker_cluster_bus_up{channel}`; ioredis reconnects by itself and re-subscribes
// (`autoResubscribe`), so the bus recovers without a restart.
//
// Closing never waits on an unreachable Redis: ioredis queues QUIT while it reconnects and mqemitter-redis waits for
// each connection's `end`, which a connection that is reconnecting never emits. So each emitter's close is bounded
// (`closeTimeoutMs`, at once when its connections are already down), after which its connections are disconnected.
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { AedesOptions } from 'aedes';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';

// Both packages are CommonJS without an ESM entry for the parts used here (the prefixed emitter, the promise-based
// persistence that aedes 1.x calls).
const require = createRequire(import.meta.url);
const { MQEmitterRedisPrefix } = require('mqemitter-redis') as { MQEmitterRedisPrefix: new (prefix: string, options: object) => ClusterEmitter };
const AsyncRedisPersistence = require('aedes-persistence-redis/asyncPersistence.js') as new (options: object) => ClusterPersistence;

/**
 * aedes-persistence-redis 11 (the line within aedes 1.2's peer range) returns retained messages as an async generator;
 * aedes 1.2 pipes them (`.pipe`, as aedes-persistence 11 returns a Readable). Its other streams meet `pipeline` and
 * `for await`, which take either.
 */
class RetainedAsReadable extends AsyncRedisPersistence {
  override createRetainedStreamCombi(patterns: string[]): Readable {
    return Readable.from(super.createRetainedStreamCombi(patterns));
  }

  override createRetainedStream(pattern: string): Readable {
    return Readable.from(super.createRetainedStream(pattern));
  }
}

interface ClusterEmitter {
  state: NodeJS.EventEmitter;
  on(topic: string, callback: unknown, done?: (error?: Error) => void): unknown;
  removeListener(topic: string, callback: unknown, done?: (error?: Error) => void): unknown;
  emit(packet: object, done?: (error?: Error) => void): void;
  close(callback: () => void): void;
  /** mqemitter's own close (the in-process half), which mqemitter-redis calls once both connections ended. */
  _close(callback: () => void): void;
}

interface ClusterPersistence {
  destroy(): Promise<void>;
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown>;
  createRetainedStream(pattern: string): AsyncIterable<unknown>;
}

const DISCONNECT_TIMEOUT_MS = 200;

/** aedes' reserved topics (aedes.js, aedes-persistence's broadcastPersistence.js): all of the cluster's control traffic. */
const CONTROL_TOPIC_PREFIX = '$SYS/';
/** Appended to the cluster prefix for the data channel, so its wildcard subscriptions never match control channels. */
const DATA_CHANNEL_PREFIX = 'data:';

export type BusChannel = 'control' | 'store' | 'data';

export interface ClusterBusOptions {
  redisUrl: string;
  /** Prefix of every pub/sub channel and key of this cluster, e.g. `enrolld:mqtt:`. */
  prefix: string;
  logger: Logger;
  registry: Registry;
  /** The longest a close waits for Redis to acknowledge QUIT before it disconnects (default 2 s). */
  closeTimeoutMs?: number | undefined;
}

export interface ClusterBus {
  /** What aedes needs: the shared emitter and the shared persistence. */
  aedesOptions(): Pick<AedesOptions, 'mq' | 'persistence'>;
  /** True while what admission depends on is ready: the control channel and the persistence. */
  connected(): boolean;
  /** True while the data channel (cross-node delivery of application messages) is ready. */
  dataConnected(): boolean;
  /** Waits until every connection of the bus is ready (a node joins the cluster only with a working bus). */
  ready(): Promise<void>;
  /** Each change of `connected()`: false when the control channel or the store was lost, true when both are ready again. */
  onChange(listener: (connected: boolean) => void): void;
  /** Closes the persistence and every connection, bounded; aedes closes the emitter itself (bounded as well). */
  close(): Promise<void>;
}

type Done = (error?: Error) => void;

/** Calls `done` once, whichever of the callers comes first. */
function once(done: Done): Done {
  let called = false;
  return (error) => {
    if (called) return;
    called = true;
    done(error);
  };
}

export function createClusterBus(options: ClusterBusOptions): ClusterBus {
  const log = options.logger.child({ component: 'cluster-bus' });
  const connection = (role: string, extra: { keyPrefix?: string } = {}) =>
    new Redis(options.redisUrl, {
      connectionName: `enrolld-broker-${role}`,
      // Commands wait for a reconnect instead of failing every publish at once; a long outage degrades delivery.
      maxRetriesPerRequest: null,
      retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
      // ioredis waits this long for a socket to close after disconnect() (2 s by default), even one Redis already dropped.
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
      ...extra,
    });
  const controlSub = connection('control-sub');
  const controlPub = connection('control-pub');
  const dataSub = connection('data-sub');
  const dataPub = connection('data-pub');
  // The persistence is the only user of keys: its connection alone carries the key prefix.
  const store = connection('store', { keyPrefix: options.prefix });
  const channels: Record<BusChannel, Redis[]> = { control: [controlSub, controlPub], store: [store], data: [dataSub, dataPub] };
  const connections = [controlSub, controlPub, store, dataSub, dataPub];

  const up = new Gauge({
    name: 'enrolld_broker_cluster_bus_up',
    help: '1 while this broker reaches the cluster bus (Redis) on the channel: control and store (admission waits for both), data (cross-node delivery of application messages)',
    labelNames: ['channel'],
    registers: [options.registry],
  });
  const losses = new Counter({ name: 'enrolld_broker_cluster_bus_losses_total', help: 'Times this broker lost a channel of the cluster bus (Redis)', labelNames: ['channel'], registers: [options.registry] });
  const channelUp = (channel: BusChannel) => channels[channel].every((c) => c.status === 'ready');
  const isConnected = () => channelUp('control') && channelUp('store');
  const wasUp: Record<BusChannel, boolean> = { control: false, store: false, data: false };
  /** Why each connection last went away: the last error ioredis reported on it, if any. */
  const lastError = new Map<Redis, string>();
  let wasConnected = false;
  /** Set from a loss of the data channel until it is back (its first ready, at start, is no recovery). */
  let dataLost = false;
  let closing = false;
  const listeners: Array<(connected: boolean) => void> = [];
  const closeTimeoutMs = options.closeTimeoutMs ?? 2000;
  const names = (list: Redis[]) => list.filter((c) => c.status !== 'ready').map((c) => c.options.connectionName);
  const reason = (list: Redis[]) => {
    const errors = list.filter((c) => c.status !== 'ready').map((c) => lastError.get(c)).filter((e): e is string => e !== undefined);
    // Redis closes a client without a word: for a subscriber that outgrew its output buffer, or on CLIENT KILL.
    return errors.length > 0 ? errors.join('; ') : 'closed by Redis (a subscriber over client-output-buffer-limit pubsub, CLIENT KILL, or Redis stopping)';
  };

  const watch = (): void => {
    for (const channel of Object.keys(channels) as BusChannel[]) {
      const now = channelUp(channel);
      up.set({ channel }, now ? 1 : 0);
      if (now === wasUp[channel] || closing) continue;
      wasUp[channel] = now;
      if (channel !== 'data') {
        if (!now) losses.inc({ channel });
        continue;
      }
      if (now) {
        if (dataLost) log.info('cluster bus data channel restored: cross-node delivery resumed');
        dataLost = false;
      } else {
        dataLost = true;
        losses.inc({ channel });
        log.warn(
          { down: names(channels.data), reason: reason(channels.data) },
          'cluster bus data channel lost: messages from other nodes are not delivered here until it is back (QoS 0 lost; QoS 1/2 stay queued for persistent sessions); this node keeps admitting',
        );
      }
    }
    const now = isConnected();
    if (now === wasConnected || closing) return;
    wasConnected = now;
    if (now) log.info({ dataChannel: channelUp('data') ? 'up' : 'down' }, 'cluster bus control channel and store connected: shared sessions and takeovers restored, admitting once resynced');
    else {
      const admission = [...channels.control, ...channels.store];
      log.warn(
        { down: names(admission), reason: reason(admission) },
        'cluster bus lost: cross-node delivery, shared sessions and retained messages are degraded, and CONNECTs are refused (CONNACK 3) until Redis is back and this node has resynced',
      );
    }
    for (const listener of listeners) listener(now);
  };
  for (const c of connections) {
    c.on('ready', () => {
      lastError.delete(c);
      watch();
    });
    c.on('close', watch);
    // ioredis reports every failed reconnect; the state change above is the one line that matters.
    c.on('error', (error: Error) => {
      lastError.set(c, error.message);
      log.debug({ err: error.message, connection: c.options.connectionName }, 'cluster bus connection error');
    });
  }
  for (const channel of Object.keys(channels) as BusChannel[]) {
    up.set({ channel }, 0);
    // Every series from the start, so `increase()` sees the first loss.
    losses.inc({ channel }, 0);
  }

  const control = new MQEmitterRedisPrefix(options.prefix, { subConn: controlSub, pubConn: controlPub });
  const data = new MQEmitterRedisPrefix(options.prefix + DATA_CHANNEL_PREFIX, { subConn: dataSub, pubConn: dataPub });
  for (const emitter of [control, data]) {
    // The emitter re-emits connection errors on its own `state` emitter, which would throw without a listener.
    emitter.state.on('error', (error: Error) => log.debug({ err: error.message }, 'cluster bus emitter error'));
  }
  const persistence = new RetainedAsReadable({ conn: store });

  /** One emitter's close, bounded: QUIT on both its connections, or disconnect when Redis does not answer. */
  function closeBounded(emitter: ClusterEmitter, own: Redis[]): Promise<void> {
    return new Promise((resolve) => {
      let finished = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        resolve();
      };
      if (!own.every((c) => c.status === 'ready')) {
        // Nothing to say goodbye to: a QUIT would wait in ioredis' offline queue for a Redis that is not there.
        for (const c of own) c.disconnect();
        emitter._close(finish);
        return;
      }
      timer = setTimeout(() => {
        if (finished) return;
        log.warn({ timeoutMs: closeTimeoutMs }, 'cluster bus did not acknowledge the close: disconnecting');
        for (const c of own) c.disconnect();
        emitter._close(finish);
      }, closeTimeoutMs);
      emitter.close(finish);
    });
  }

  // What aedes calls on its `mq` (aedes.js: on, removeListener, emit, close), routed by topic. A client's filter never
  // starts with `$SYS/` unless it names the reserved topics themselves, and MQTT-4.7.2-1 keeps `#` and `+` filters from
  // matching them: no subscription needs both channels.
  const route = (topic: string): ClusterEmitter => (topic.startsWith(CONTROL_TOPIC_PREFIX) ? control : data);
  /**
   * A subscribe or unsubscribe on the data channel while its subscriber reconnects: the filter is registered at once and
   * ioredis sends it when it is back; SUBACK, and the CONNACK of a resumed session, do not wait for it.
   */
  const settle = (emitter: ClusterEmitter, done: Done | undefined): Done | undefined => {
    if (!done || emitter !== data || dataSub.status === 'ready') return done;
    const settled = once(done);
    setImmediate(settled);
    return settled;
  };
  const mq = {
    on(topic: string, callback: unknown, done?: Done) {
      const emitter = route(topic);
      emitter.on(topic, callback, settle(emitter, done));
      return mq;
    },
    removeListener(topic: string, callback: unknown, done?: Done) {
      const emitter = route(topic);
      emitter.removeListener(topic, callback, settle(emitter, done));
      return mq;
    },
    emit(packet: { topic: string }, done?: Done) {
      route(packet.topic).emit(packet, done);
    },
    close(callback: () => void) {
      closing = true;
      void Promise.all([closeBounded(control, channels.control), closeBounded(data, channels.data)]).then(() => callback());
    },
  };

  return {
    aedesOptions: () => ({ mq: mq as unknown as AedesOptions['mq'], persistence }),
    connected: isConnected,
    dataConnected: () => channelUp('data'),
    ready: () =>
      new Promise<void>((resolve) => {
        const all = () => connections.every((c) => c.status === 'ready');
        if (all()) return resolve();
        const check = () => {
          if (!all()) return;
          for (const c of connections) c.off('ready', check);
          resolve();
        };
        for (const c of connections) c.on('ready', check);
      }),
    onChange(listener) {
      listeners.push(listener);
    },
    async close() {
      // The persistence's destroy unsubscribes over Redis first: bounded like the emitter's close, skipped with Redis gone.
      const connectedAtClose = isConnected();
      closing = true;
      if (connectedAtClose) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          persistence.destroy().catch((error: unknown) => log.debug({ err: error }, 'closing the cluster persistence')),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, closeTimeoutMs);
          }),
        ]);
        clearTimeout(timer);
      }
      // ioredis' disconnect does not wait for Redis (and ends its reconnect timer).
      for (const c of connections) if (c.status !== 'end') c.disconnect();
    },
  };
}
