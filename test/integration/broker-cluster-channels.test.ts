// The cluster bus's two channels (docs/architecture.md §6, "Broker cluster"), on a redis-server owned by this test:
// application messages travel on the data channel, aedes' `$SYS/` traffic on the control channel. Redis closing a
// node's data subscriber (its output buffer over `client-output-buffer-limit pubsub` under a publish flood, or CLIENT
// KILL) degrades cross-node delivery for a moment and never admission; ioredis reconnects and re-subscribes with no
// restart. Losing the control channel or the persistence still refuses CONNECTs (CONNACK 3 `cluster-bus-down`) until
// the node has resynced.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import type { MqttClient } from 'mqtt';
import type { PublishPacket } from 'aedes';
import { CONNACK } from '@enrolld/protocol';
import { capturedLogger } from '../support/captured-logger.js';
import type { TestDatabase } from '../support/pg.js';
import type { TestRedisServer } from '../support/redis-server.js';
import type { TestPki } from '../support/test-pki.js';
import {
  clusterPrefixFor,
  connectDevice,
  type ConnectOutcome,
  endClient,
  metricValue,
  report,
  startTestBroker,
  type TestBroker,
} from '../support/broker-harness.js';
import { clusterSuite, listen } from '../support/cluster-suite.js';
import { waitFor } from '../support/wait-for.js';

/** The Redis clients of the bus with this connection name (`enrolld-broker-<role>`), from CLIENT LIST. */
async function busClients(admin: Redis, role: string): Promise<Array<{ id: string; sub: number; psub: number }>> {
  const list = (await admin.client('LIST')) as string;
  return list
    .split('\n')
    .filter((line) => line.includes(` name=enrolld-broker-${role} `))
    .map((line) => ({ id: /\bid=(\d+)/.exec(line)![1]!, sub: Number(/\bsub=(\d+)/.exec(line)![1]), psub: Number(/\bpsub=(\d+)/.exec(line)![1]) }));
}

async function killBusClients(admin: Redis, role: string): Promise<number> {
  const found = await busClients(admin, role);
  for (const client of found) await admin.client('KILL', 'ID', client.id);
  return found.length;
}

describe('broker cluster: control and data channels', () => {
  const suite = clusterSuite({ ownRedis: true });
  const { running, clients, newDevice, connected } = suite;
  let db: TestDatabase;
  let pki: TestPki;
  let redis: TestRedisServer;
  let admin: Redis;
  beforeAll(() => {
    ({ db, pki, redis } = suite);
    admin = new Redis(redis.url, { maxRetriesPerRequest: null });
  });
  afterAll(() => admin?.disconnect());

  const busUp = (node: TestBroker, channel: string) => metricValue(node.registry, 'enrolld_broker_cluster_bus_up', { channel });
  const busLosses = (node: TestBroker, channel: string) => metricValue(node.registry, 'enrolld_broker_cluster_bus_losses_total', { channel });
  const busDown = (node: TestBroker) => metricValue(node.registry, 'enrolld_broker_connect_refusals_total', { reason: 'cluster-bus-down' });
  const closed = (client: MqttClient) => new Promise<void>((resolve) => client.once('close', () => resolve()));


  /** Cross-node delivery after a loss: node 1's data subscriber is back with its pattern, and a message gets through. */
  async function deliveryResumes(node1: TestBroker, node2: TestBroker, listener: { received: PublishPacket[] }, payload: string): Promise<void> {
    await waitFor(async () => (await busClients(admin, 'data-sub')).some((c) => c.psub > 0), 10_000, "node 1's data subscription restored");
    const device = await newDevice('ch-after');
    const client = await connected(node2, device);
    await new Promise<void>((resolve, reject) => client.publish(`devices/${device.deviceId}/telemetry`, payload, { qos: 1 }, (e) => (e ? reject(e) : resolve())));
    await waitFor(() => listener.received.some((p) => p.payload.toString() === payload), 10_000, 'telemetry from node 2 on node 1');
  }

  it('a publish flood that makes Redis drop node 1\'s data subscriber (output buffer limit) leaves admission and takeover working; delivery resumes with no restart', async () => {
    // Small enough that a node reading a few MB behind is dropped, as the default 32mb/8mb/60 does at a larger scale.
    await admin.config('SET', 'client-output-buffer-limit', 'pubsub 256kb 128kb 1');
    const prefix = clusterPrefixFor('channels-flood');
    let readyAtLoss: boolean | undefined;
    let node1: TestBroker | undefined;
    const log = capturedLogger((line) => {
      if (line.msg.startsWith('cluster bus data channel lost') && readyAtLoss === undefined) readyAtLoss = node1!.broker.clusterReady();
    });
    node1 = await startTestBroker(db.url, db.pool, pki, { cluster: { prefix, redisUrl: redis.url }, logger: log.logger });
    running.push(node1);
    const node2 = await startTestBroker(db.url, db.pool, pki, { cluster: { prefix, redisUrl: redis.url } });
    running.push(node2);
    const service = await listen(node1, 'devices/+/telemetry');
    expect(await busUp(node1, 'data')).toBe(1);

    // Devices on node 2, each within its publish quota (100/s): 80 QoS 0 publishes of 64 KiB a second each.
    const flooders = await Promise.all([1, 2, 3, 4, 5, 6].map(() => newDevice('ch-flood')));
    // Services on node 1 with overlapping filters: Redis sends node 1 each message once per pattern it matches, so node
    // 1 reads eleven times what node 2 publishes (in this test one event loop runs both nodes and the devices).
    const filters = ['#', '+/#', '+/+/#', 'devices/#', 'devices/+/#', 'devices/+/+', '+/+/telemetry'];
    for (const { deviceId } of flooders) filters.push(`devices/${deviceId}/#`, `devices/${deviceId}/telemetry`, `+/${deviceId}/telemetry`, `+/${deviceId}/#`);
    for (const filter of filters) await listen(node1, filter);
    const floodClients = await Promise.all(flooders.map((d) => connected(node2, d)));
    const payload = Buffer.alloc(64 * 1024, 7);
    const pump = setInterval(() => {
      floodClients.forEach((c, i) => c.publish(`devices/${flooders[i]!.deviceId}/telemetry`, payload, { qos: 0 }));
    }, 12);
    const outcomes: ConnectOutcome[] = [];
    const floodStarted = performance.now();
    try {
      // CONNECTs to node 1 all through the flood, until Redis has dropped its data subscriber and it is back.
      const probe = await newDevice('ch-probe');
      let probing = true;
      const prober = (async () => {
        while (probing) {
          const outcome = await connectDevice(node1.port, pki, probe);
          outcomes.push(outcome);
          if (outcome.ok) await endClient(outcome.client);
          else break;
        }
      })();
      try {
        await waitFor(async () => (await busLosses(node1, 'data')) >= 1, 60_000, 'Redis to drop node 1\'s data subscriber');
        // A takeover across nodes while the flood goes on: the control channel is not the data channel.
        const twin = await newDevice('ch-twin');
        const first = await connected(node1, twin);
        const firstClosed = closed(first);
        await connected(node2, twin);
        await firstClosed;
      } finally {
        probing = false;
        await prober;
      }
    } finally {
      clearInterval(pump);
    }
    const dataLosses = await busLosses(node1, 'data');
    report('CLUSTER-DATA-CHANNEL-FLOOD', outcomes.every((o) => o.ok), {
      floodSeconds: Number(((performance.now() - floodStarted) / 1000).toFixed(1)),
      connectsToNode1: outcomes.length,
      admitted: outcomes.filter((o) => o.ok).length,
      dataChannelLosses: dataLosses,
      serviceMessagesOnNode1: service.received.length,
    });
    expect(readyAtLoss).toBe(true);
    expect(outcomes.length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(await busDown(node1)).toBe(0);
    expect(await busLosses(node1, 'control')).toBe(0);
    expect(await busLosses(node1, 'store')).toBe(0);
    expect(log.count('cluster bus lost')).toBe(0);
    // One warn line per loss, with its reason.
    expect(log.count('cluster bus data channel lost')).toBe(await busLosses(node1, 'data'));
    expect(log.find('cluster bus data channel lost')).toMatchObject({ level: 40, down: ['enrolld-broker-data-sub'], reason: expect.stringContaining('client-output-buffer-limit') });

    await waitFor(async () => (await busUp(node1, 'data')) === 1, 10_000, 'the data channel up again');
    expect(node1.broker.clusterBusDataConnected()).toBe(true);
    await deliveryResumes(node1, node2, service, 'after-flood');
    await admin.config('SET', 'client-output-buffer-limit', 'pubsub 32mb 8mb 60');
  }, 120_000);

  it('with its data subscriber killed and Redis paused, a node admits (CONNACK 0), shows the data channel down, and delivers again after', async () => {
    const prefix = clusterPrefixFor('channels-kill');
    const log = capturedLogger();
    const node1 = await startTestBroker(db.url, db.pool, pki, { cluster: { prefix, redisUrl: redis.url }, logger: log.logger });
    running.push(node1);
    const node2 = await startTestBroker(db.url, db.pool, pki, { cluster: { prefix, redisUrl: redis.url } });
    running.push(node2);
    const service = await listen(node1, 'devices/+/telemetry');
    const device = await newDevice('ch-kill');
    const subscriber = await newDevice('ch-kill-sub');
    const subscriberClient = await connected(node1, subscriber);
    const commands = `devices/${subscriber.deviceId}/commands`;

    // The kill, then a pause that holds every reconnect: the data channel stays down for the pause.
    expect(await killBusClients(admin, 'data-sub')).toBe(2);
    await admin.client('PAUSE', '4000', 'ALL');
    await waitFor(async () => (await busUp(node1, 'data')) === 0, 3000, 'the data channel down on node 1');
    expect(await busUp(node1, 'control')).toBe(1);
    expect(node1.broker.clusterReady()).toBe(true);
    // A SUBSCRIBE meanwhile gets its SUBACK without waiting for the data subscriber; the filter follows it to Redis.
    await new Promise<void>((resolve, reject) => subscriberClient.subscribe(commands, { qos: 1 }, (e) => (e ? reject(e) : resolve())));
    expect(await busUp(node1, 'data')).toBe(0);
    const attempt = connectDevice(node1.port, pki, device);
    // Admitted while the data channel is down (aedes' own steps for the session then wait for Redis).
    await waitFor(() => node1.broker.hasSession(device.serial), 3000, 'admission on node 1');
    expect(await busUp(node1, 'data')).toBe(0);
    const outcome = await attempt;
    expect(outcome.ok).toBe(true);
    if (outcome.ok) clients.push(outcome.client);

    await waitFor(async () => (await busUp(node1, 'data')) === 1, 10_000, 'the data channel up again');
    expect(await busLosses(node1, 'data')).toBe(1);
    expect(log.count('cluster bus data channel lost')).toBe(1);
    expect(log.count('cluster bus data channel restored')).toBe(1);
    expect(log.count('cluster bus lost')).toBe(0);
    expect(await busDown(node1)).toBe(0);
    await deliveryResumes(node1, node2, service, 'after-kill');
    // The subscription made while the data channel was down was sent when it came back.
    await waitFor(async () => (await busClients(admin, 'data-sub')).some((c) => c.sub > 0), 10_000, "node 1's device subscription on Redis");
    const command = new Promise<string>((resolve) => subscriberClient.on('message', (topic, payload) => topic === commands && resolve(payload.toString())));
    await node2.broker.publish(commands, 'from-node-2');
    expect(await command).toBe('from-node-2');
  }, 60_000);

  for (const role of ['control-sub', 'store'] as const) {
    it(`losing the ${role === 'store' ? 'persistence connection' : 'control subscriber'} still refuses CONNECTs with CONNACK 3 cluster-bus-down until the node resynced`, async () => {
      const prefix = clusterPrefixFor(`channels-${role}`);
      const log = capturedLogger();
      const node = await startTestBroker(db.url, db.pool, pki, { cluster: { prefix, redisUrl: redis.url }, logger: log.logger });
      running.push(node);
      const device = await newDevice('ch-ctl');
      expect(await killBusClients(admin, role)).toBe(1);
      await admin.client('PAUSE', '3000', 'ALL');
      await waitFor(() => !node.broker.clusterBusConnected(), 3000, 'the node to lose its bus');
      const refused = await connectDevice(node.port, pki, device);
      expect(refused).toMatchObject({ ok: false, code: CONNACK.serverUnavailable });
      expect(await busDown(node)).toBe(1);
      expect(await busLosses(node, role === 'store' ? 'store' : 'control')).toBe(1);
      expect(log.count('cluster bus lost')).toBe(1);
      expect(log.count('cluster bus data channel lost')).toBe(0);

      await waitFor(() => node.broker.clusterReady(), 20_000, 'the node to resync');
      expect(log.count('cluster bus resynced')).toBe(1);
      await connected(node, device);
      expect(await busDown(node)).toBe(1);
    }, 60_000);
  }
});
