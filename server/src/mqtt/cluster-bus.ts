// The broker cluster on Redis (docs/architecture.md §6, "Broker cluster"): aedes' own cluster packages, no home-made
// bus. mqemitter-redis carries every publish, aedes' $SYS traffic (heartbeats, client takeover, subscription
// broadcasts) between nodes over Redis pub/sub; aedes-persistence-redis keeps sessions, queued QoS 1/2 messages,
// retained messages and wills in Redis, so a device may resume its session on any node. Postgres stays the record:
// nothing of admission or revocation lives here.
//
// Every channel and key carries the prefix, so clusters (or tests) sharing a Redis never see each other's traffic.
// The bus is watched through the connections we hand to both packages: a lost connection is logged once, counted, and
// shown on `enrolld_broker_cluster_bus_up`; ioredis reconnects by itself and the bus recovers without a restart. The
// broker refuses CONNECTs while the bus is down and until it has resynced after it (broker.ts, `onChange`).
//
// Closing never waits on an unreachable Redis: ioredis queues QUIT while it reconnects and mqemitter-redis waits for
// each connection's `end`, which a connection that is reconnecting never emits. So the emitter's close is bounded
// (`closeTimeoutMs`, at once when the bus is already down), after which every connection is disconnected.
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
  /** True while every Redis connection of the bus is ready. */
  connected(): boolean;
  /** Waits until the bus is connected (a node joins the cluster only with a working bus). */
  ready(): Promise<void>;
  /** Each change of `connected()`: false when a connection of the bus was lost, true when all are ready again. */
  onChange(listener: (connected: boolean) => void): void;
  /** Closes the persistence and every connection, bounded; aedes closes the emitter itself (bounded as well). */
  close(): Promise<void>;
}

export function createClusterBus(options: ClusterBusOptions): ClusterBus {
  const log = options.logger.child({ component: 'cluster-bus' });
  const connection = (role: string) =>
    new Redis(options.redisUrl, {
      connectionName: `enrolld-broker-${role}`,
      // Commands wait for a reconnect instead of failing every publish at once; a long outage degrades delivery.
      maxRetriesPerRequest: null,
      retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
      // ioredis waits this long for a socket to close after disconnect() (2 s by default), even one Redis already dropped.
      disconnectTimeout: DISCONNECT_TIMEOUT_MS,
    });
  const sub = connection('sub');
  const pub = connection('pub');
  // The persistence is the only user of keys: its connection alone carries the key prefix.
  const store = new Redis(options.redisUrl, { connectionName: 'enrolld-broker-store', keyPrefix: options.prefix, maxRetriesPerRequest: null, retryStrategy: (attempt) => Math.min(attempt * 100, 2000), disconnectTimeout: DISCONNECT_TIMEOUT_MS });
  const connections = [sub, pub, store];

  const up = new Gauge({ name: 'enrolld_broker_cluster_bus_up', help: '1 while this broker reaches the cluster bus (Redis), 0 while cross-node delivery is degraded', registers: [options.registry] });
  const losses = new Counter({ name: 'enrolld_broker_cluster_bus_losses_total', help: 'Times this broker lost the cluster bus (Redis)', registers: [options.registry] });
  let wasConnected = false;
  let closing = false;
  const listeners: Array<(connected: boolean) => void> = [];
  const closeTimeoutMs = options.closeTimeoutMs ?? 2000;
  const isConnected = () => connections.every((c) => c.status === 'ready');
  const watch = (): void => {
    const now = isConnected();
    up.set(now ? 1 : 0);
    if (now === wasConnected || closing) return;
    wasConnected = now;
    if (now) log.info('cluster bus connected: cross-node delivery restored');
    else {
      losses.inc();
      log.warn(
        { down: connections.filter((c) => c.status !== 'ready').map((c) => c.options.connectionName) },
        'cluster bus lost: cross-node delivery, shared sessions and retained messages are degraded, and CONNECTs are refused (CONNACK 3) until Redis is back and this node has resynced',
      );
    }
    for (const listener of listeners) listener(now);
  };
  for (const c of connections) {
    c.on('ready', watch);
    c.on('close', watch);
    // ioredis reports every failed reconnect; the state change above is the one line that matters.
    c.on('error', (error: Error) => log.debug({ err: error.message }, 'cluster bus connection error'));
  }
  up.set(0);

  const mq = new MQEmitterRedisPrefix(options.prefix, { subConn: sub, pubConn: pub });
  // The emitter re-emits connection errors on its own `state` emitter, which would throw without a listener.
  mq.state.on('error', (error: Error) => log.debug({ err: error.message }, 'cluster bus emitter error'));
  const persistence = new RetainedAsReadable({ conn: store });
  const closeEmitter = mq.close.bind(mq);
  const emitterConnections = [sub, pub];
  mq.close = (callback: () => void) => {
    closing = true;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      callback();
    };
    const abandon = () => {
      if (finished) return;
      log.warn({ timeoutMs: closeTimeoutMs }, 'cluster bus did not acknowledge the close: disconnecting');
      for (const c of emitterConnections) c.disconnect();
      mq._close(finish);
    };
    if (!isConnected()) {
      // Nothing to say goodbye to: a QUIT would wait in ioredis' offline queue for a Redis that is not there.
      for (const c of emitterConnections) c.disconnect();
      mq._close(finish);
      return;
    }
    timer = setTimeout(abandon, closeTimeoutMs);
    closeEmitter(finish);
  };

  return {
    aedesOptions: () => ({ mq: mq as unknown as AedesOptions['mq'], persistence }),
    connected: isConnected,
    ready: () =>
      new Promise<void>((resolve) => {
        if (isConnected()) return resolve();
        const check = () => {
          if (!isConnected()) return;
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
