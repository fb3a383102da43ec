// A cluster node whose Redis goes away (docs/architecture.md §6, "Broker cluster"): a redis-server owned by this test on
// a port of its own, killed with SIGKILL and started again (never the shared Redis). While the bus is down, and until the
// node has resynced after it came back, every CONNECT gets CONNACK 3 `cluster-bus-down`, counted and logged once; a
// revocation committed meanwhile is purged from the shared persistence before anyone is admitted again; no restart.
// And a broker stops promptly with its Redis gone.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { capturedLogger } from '../support/captured-logger.js';
import type { TestDatabase } from '../support/pg.js';
import type { TestRedisServer } from '../support/redis-server.js';
import type { TestPki } from '../support/test-pki.js';
import {
  clusterPrefixFor,
  connectDevice,
  endClient,
  metricValue,
  raceTimeout,
  revocationServiceFor,
  startTestBroker,
  type TestBroker,
} from '../support/broker-harness.js';
import { CONNACK, problemType, routes } from '@enrolld/protocol';
import { httpsRequest } from '../support/http.js';
import { startTestServer } from '../support/server-harness.js';
import { clusterSuite } from '../support/cluster-suite.js';
import { waitFor } from '../support/wait-for.js';

describe('broker cluster: a node that loses its Redis', () => {
  const suite = clusterSuite({ ownRedis: true });
  const { running, newDevice, connected } = suite;
  let db: TestDatabase;
  let pki: TestPki;
  let redis: TestRedisServer;
  beforeAll(() => {
    ({ db, pki, redis } = suite);
  });

  const refusals = (node: TestBroker, reason: string) => metricValue(node.registry, 'enrolld_broker_connect_refusals_total', { reason });

  it('refuses every CONNECT with CONNACK 3 cluster-bus-down until Redis is back and the node resynced, then admits with no restart', async () => {
    const prefix = clusterPrefixFor('faults');
    const log = capturedLogger();
    const node = await startTestBroker(db.url, db.pool, pki, { cluster: { prefix, redisUrl: redis.url }, logger: log.logger });
    running.push(node);
    const keys = new Redis(redis.url, { maxRetriesPerRequest: null });
    try {
      // A device with residue in Redis (a persistent subscription, a retained message), revoked while Redis is down.
      const revoked = await newDevice('fl-rev');
      const id = encodeURIComponent(revoked.deviceId);
      const state = `devices/${revoked.deviceId}/state`;
      const first = await connected(node, revoked, { clean: false });
      await new Promise<void>((resolve, reject) => first.subscribe(`devices/${revoked.deviceId}/commands`, { qos: 1 }, (error) => (error ? reject(error) : resolve())));
      await new Promise<void>((resolve, reject) => first.publish(state, 'on', { qos: 1, retain: true }, (error) => (error ? reject(error) : resolve())));
      await endClient(first);
      const residue = async () => ({
        subscriptions: await keys.hlen(`${prefix}client:${id}`),
        retained: (await keys.hexists(`${prefix}retained`, state)) ? 1 : 0,
      });
      await waitFor(async () => Object.values(await residue()).every((n) => n > 0), 5000, 'residue in Redis before the outage');
      const device = await newDevice('fl-ok');
      // Admitted while the bus is up: the marker that the refusals below are the outage's.
      await endClient(await connected(node, device));

      await redis.kill();
      await waitFor(() => !node.broker.clusterBusConnected(), 10_000, 'the node to lose its bus');
      expect(node.broker.clusterReady()).toBe(false);
      for (let i = 0; i < 3; i++) {
        const refused = await connectDevice(node.port, pki, device);
        expect(refused).toMatchObject({ ok: false, code: CONNACK.serverUnavailable });
      }
      expect(await refusals(node, 'cluster-bus-down')).toBe(3);
      // One line for the outage, none per refused CONNECT.
      expect(log.count('cluster bus lost')).toBe(1);
      expect(log.count('refusing CONNECT: cluster bus down')).toBe(0);

      // The revocation reaches the node through Postgres while Redis is down; its purge of Redis waits.
      await revocationServiceFor(db.pool, pki).revokeDevice(revoked.deviceId, { reason: 'keyCompromise', actor: 'faults-test' });
      await node.broker.resync();

      await redis.restart();
      await waitFor(() => node.broker.clusterReady(), 20_000, 'the node to resync after Redis came back');
      // Admitting again means the residue of the revocation made during the outage is gone from Redis.
      expect(await residue()).toEqual({ subscriptions: 0, retained: 0 });
      expect(log.count('cluster bus resynced')).toBe(1);
      await connected(node, device);
      const again = await connectDevice(node.port, pki, revoked);
      expect(again).toMatchObject({ ok: false, code: CONNACK.notAuthorized });
      expect(await refusals(node, 'cluster-bus-down')).toBe(3);
    } finally {
      keys.disconnect();
      // A test that failed with Redis down still stops its broker (bounded) and leaves Redis up for the next one.
      await redis.restart().catch(() => undefined);
    }
  });

  it('/readyz of `enrolld up` in a cluster: 503 with clusterBus false from the loss of Redis until the node resynced, then 200', async () => {
    const server = await startTestServer({
      env: { BROKER_CLUSTER: 'redis', REDIS_URL: redis.url, BROKER_CLUSTER_PREFIX: clusterPrefixFor('faults-ready').replace(/:$/, ''), JOBS: 'off' },
    });
    const readyz = async () => {
      const res = await httpsRequest(server.apiUrl + routes.readyz, server.rootPem);
      return { status: res.status, checks: res.json<{ checks: Record<string, boolean> }>().checks };
    };
    try {
      expect(await readyz()).toEqual({ status: 200, checks: { database: true, revocationState: true, clusterBus: true } });
      await redis.kill();
      await waitFor(async () => (await readyz()).status === 503, 10_000, '/readyz to report the lost bus', 50);
      expect(await readyz()).toEqual({ status: 503, checks: { database: true, revocationState: true, clusterBus: false } });
      // The 503 is a problem document, like the broker port's: notReady names the failed check.
      expect((await httpsRequest(server.apiUrl + routes.readyz, server.rootPem)).json()).toMatchObject({ type: problemType('unavailable'), notReady: ['clusterBus'] });
      await redis.restart();
      await waitFor(async () => (await readyz()).status === 200, 20_000, '/readyz after Redis came back', 50);
      expect(server.running.broker.clusterReady()).toBe(true);
    } finally {
      await redis.restart();
      await server.stop();
    }
  });

  it('stop() with Redis gone finishes: aedes\' close and the bus\'s QUIT are bounded', async () => {
    const prefix = clusterPrefixFor('faults-stop');
    const node = await startTestBroker(db.url, db.pool, pki, { cluster: { prefix, redisUrl: redis.url } });
    running.push(node);
    // A live persistent session with a will: closing it writes to the shared persistence.
    const device = await newDevice('fl-stop');
    const client = await connected(node, device, { clean: false, will: { topic: `devices/${device.deviceId}/status`, payload: Buffer.from('gone'), qos: 1, retain: false } });
    await new Promise<void>((resolve, reject) => client.subscribe(`devices/${device.deviceId}/commands`, { qos: 1 }, (error) => (error ? reject(error) : resolve())));
    await redis.kill();
    try {
      await waitFor(() => !node.broker.clusterBusConnected(), 10_000, 'the node to lose its bus');
      // Not a speed figure: a stop that waits on the missing Redis never ends, and this race says so instead of jest's timeout.
      const t0 = performance.now();
      expect(await raceTimeout(node.stop().then(() => 'stopped' as const), 30_000, 'still waiting on Redis' as const)).toBe('stopped');
      process.stdout.write(`${JSON.stringify({ id: 'CLUSTER-STOP-REDIS-DOWN', figures: { stopMs: Math.round(performance.now() - t0) } })}\n`);
    } finally {
      await redis.restart();
    }
  });
});
