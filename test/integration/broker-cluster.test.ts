// A broker cluster on Redis (docs/architecture.md §6, "Broker cluster"): two broker instances over one Postgres and one
// Redis, real mTLS MQTT clients. Each test names its own cluster prefix, so clusters of other tests sharing this Redis
// never see its channels or keys.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { MqttClient } from 'mqtt';
import type { TestDatabase } from '../support/pg.js';
import { deviceIdFor, type DeviceCert, type TestPki } from '../support/test-pki.js';
import {
  clusterPrefixFor,
  connectDevice,
  dropClusterKeys,
  endClient,
  metricValue,
  percentile,
  report,
  revocationServiceFor,
  TEST_REDIS_URL,
  startTestBroker,
  type TestBroker,
} from '../support/broker-harness.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { clusterSuite, listen } from '../support/cluster-suite.js';
import { waitFor } from '../support/wait-for.js';

describe('broker cluster on Redis', () => {
  const prefixes: string[] = [];
  const suite = clusterSuite({ afterEach: () => Promise.all(prefixes.splice(0).map((p) => dropClusterKeys(p))) });
  const { running, clients, newDevice, connected } = suite;
  let db: TestDatabase;
  let pki: TestPki;
  beforeAll(() => {
    ({ db, pki } = suite);
  });

  async function cluster(name: string): Promise<[TestBroker, TestBroker]> {
    const prefix = clusterPrefixFor(name);
    prefixes.push(prefix);
    const nodes = await Promise.all([1, 2].map(() => startTestBroker(db.url, db.pool, pki, { cluster: { prefix } })));
    running.push(...nodes);
    return nodes as [TestBroker, TestBroker];
  }

  const publish = (client: MqttClient, topic: string, payload: string, options: { qos?: 0 | 1; retain?: boolean } = {}) =>
    new Promise<void>((resolve, reject) => client.publish(topic, payload, { qos: options.qos ?? 1, retain: options.retain ?? false }, (error) => (error ? reject(error) : resolve())));
  const subscribe = (client: MqttClient, topic: string) =>
    new Promise<number>((resolve, reject) => client.subscribe(topic, { qos: 1 }, (error, granted) => (error ? reject(error) : resolve(granted?.[0]?.qos ?? -1))));
  const nextMessage = (client: MqttClient, topic: string) =>
    new Promise<string>((resolve) => {
      const onMessage = (t: string, payload: Buffer) => {
        if (t !== topic) return;
        client.off('message', onMessage);
        resolve(payload.toString());
      };
      client.on('message', onMessage);
    });
  const closed = (client: MqttClient) => new Promise<void>((resolve) => client.once('close', () => resolve()));

  it('telemetry published by a device on node 2 reaches a listener on node 1, and node 1 reaches a device on node 2', async () => {
    const [node1, node2] = await cluster('telemetry');
    const device = await newDevice('cl-tel');
    const telemetry = `devices/${device.deviceId}/telemetry`;
    const listener = await listen(node1, telemetry);
    const client = await connected(node2, device);
    await publish(client, telemetry, 'reading-1');
    await waitFor(() => listener.received.length > 0, 5000, 'telemetry on node 1');
    expect(listener.received[0]!.payload.toString()).toBe('reading-1');

    // The other direction, to a real device client: it subscribes to its own topic on node 2, node 1 publishes.
    const commands = `devices/${device.deviceId}/commands`;
    expect(await subscribe(client, commands)).toBe(1);
    const message = nextMessage(client, commands);
    await node1.broker.publish(commands, 'from-node-1');
    expect(await message).toBe('from-node-1');
  });

  it('a retained message published on node 1 is delivered on node 2', async () => {
    const [node1, node2] = await cluster('retained');
    const device = await newDevice('cl-ret');
    const state = `devices/${device.deviceId}/state`;
    const first = await connected(node1, device);
    await publish(first, state, 'online', { retain: true });
    await endClient(first);
    const second = await connected(node2, device);
    const message = nextMessage(second, state);
    expect(await subscribe(second, state)).toBe(1);
    expect(await message).toBe('online');
  });

  it('a persistent QoS 1 session resumes on the other node with its queued messages', async () => {
    const [node1, node2] = await cluster('session');
    const device = await newDevice('cl-ses');
    const commands = `devices/${device.deviceId}/commands`;
    const first = await connected(node1, device, { clean: false });
    expect(await subscribe(first, commands)).toBe(1);
    await endClient(first);
    await waitFor(() => node1.broker.connectedDevices() === 0, 5000, 'node 1 to see the device leave');

    // Queued while the device is offline, by node 1.
    await node1.broker.publish(commands, 'queued-while-offline', 1);
    const second = await connectDevice(node2.port, pki, device, { clean: false });
    if (!second.ok) throw new Error(second.error);
    clients.push(second.client);
    const message = nextMessage(second.client, commands);
    expect(await message).toBe('queued-while-offline');
  });

  it('one session per identity across the cluster: a reconnect on node 2 ends the session on node 1 (MQTT-3.1.4-2)', async () => {
    const [node1, node2] = await cluster('takeover');
    const device = await newDevice('cl-take');
    const first = await connected(node1, device);
    const firstClosed = closed(first);
    await connected(node2, device);
    await firstClosed;
    await waitFor(() => node1.broker.connectedDevices() === 0, 5000, 'node 1 to drop the old session');
    expect(node2.broker.connectedDevices()).toBe(1);
  });

  it('a revocation cuts a device on the other node, within the cross-node target, with no will on any node', async () => {
    const [node1, node2] = await cluster('revoke');
    // The API beside node 1 (as in `enrolld up`): node 1 hears the revocation in-process, node 2 only by NOTIFY.
    const service = revocationServiceFor(db.pool, pki, node1.revocations);
    const trials = 30;
    const latencies: number[] = [];
    let willsDelivered = 0;
    for (let i = 0; i < trials; i++) {
      const device = await newDevice('cl-rev');
      const status = `devices/${device.deviceId}/status`;
      const onNode1 = await listen(node1, status);
      const client = await connected(node2, device, { will: { topic: status, payload: Buffer.from('gone'), qos: 1, retain: false } });
      const cut = new Promise<number>((resolve) => client.stream.once('close', () => resolve(performance.now())));
      const t0 = performance.now();
      await service.revokeDevice(device.deviceId, { reason: 'keyCompromise', actor: 'cluster-test' });
      latencies.push((await cut) - t0);
      // A marker on the same topic from node 2 reaches node 1 after anything node 2 published before it.
      await node2.broker.publish(status, 'marker');
      await waitFor(() => onNode1.received.some((p) => p.payload.toString() === 'marker'), 5000, 'the marker on node 1');
      willsDelivered += onNode1.received.filter((p) => p.payload.toString() === 'gone').length;
    }
    latencies.sort((a, b) => a - b);
    const figures = { trials, p50ms: +percentile(latencies, 0.5).toFixed(1), p99ms: +percentile(latencies, 0.99).toFixed(1), maxms: +latencies.at(-1)!.toFixed(1), willsDelivered };
    report('CLUSTER-REVOKE', willsDelivered === 0, figures);
    expect(willsDelivered).toBe(0);
    expect(latencies).toHaveLength(trials);
  });

  it('the residue purge empties the shared persistence: persistent subscriptions, retained messages and the will', async () => {
    const [node1, node2] = await cluster('purge');
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const prefix = prefixes.at(-1)!;
      const device = await newDevice('cl-pur');
      const id = encodeURIComponent(device.deviceId);
      const commands = `devices/${device.deviceId}/commands`;
      const state = `devices/${device.deviceId}/state`;
      const first = await connected(node1, device, { clean: false });
      expect(await subscribe(first, commands)).toBe(1);
      await publish(first, state, 'retained', { retain: true });
      await endClient(first);
      await waitFor(() => node1.broker.connectedDevices() === 0, 5000, 'node 1 to see the device leave');
      await node2.broker.publish(commands, 'queued', 1);
      // A live session on node 2 with a will, and the rest stored: every kind of residue exists in Redis.
      await connected(node2, device, { clean: false, will: { topic: `devices/${device.deviceId}/status`, payload: Buffer.from('gone'), qos: 1, retain: false } });
      const residue = async () => ({
        subscriptions: await redis.hlen(`${prefix}client:${id}`),
        retained: (await redis.hexists(`${prefix}retained`, state)) ? 1 : 0,
        wills: (await redis.keys(`${prefix}will:*:${id}`)).length,
      });
      await node2.broker.publish(commands, 'queued-live', 1);
      await waitFor(async () => Object.values(await residue()).every((n) => n > 0), 5000, 'residue in Redis before the revocation');

      await revocationServiceFor(db.pool, pki).revokeDevice(device.deviceId, { reason: 'keyCompromise', actor: 'cluster-test' });
      await waitFor(async () => Object.values(await residue()).every((n) => n === 0), 5000, 'the purge of the shared residue');
    } finally {
      redis.disconnect();
    }
  });

  /** A service identity (urn:enrolld:service:<name>) under the built-in `service` profile, recorded as `enrolld service` does. */
  async function newService(prefix: string): Promise<DeviceCert> {
    const name = deviceIdFor(prefix);
    const service = await pki.device(name, { sanUris: [`urn:enrolld:service:${name}`], profile: { name: 'service', version: 1 } });
    await db.pool.query(`INSERT INTO devices (id, kind) VALUES ($1, 'service')`, [name]);
    await db.pool.query(
      `INSERT INTO certificates (serial, device_id, identity_kind, public_key_sha256, csr_sha256, tbs_der, der, not_before, not_after, issued_at)
       VALUES ($1, $2, 'service', $3, $3, $4, $4, $5, $6, now())`,
      [service.serial, name, randomBytes(32), service.der, service.notBefore, service.notAfter],
    );
    return service;
  }

  /** Every message a client receives, in order. */
  function inbox(client: MqttClient): Array<{ topic: string; payload: string }> {
    const messages: Array<{ topic: string; payload: string }> = [];
    client.on('message', (topic, payload) => messages.push({ topic, payload: payload.toString() }));
    return messages;
  }

  it('a service on node 1 reads the telemetry of devices on node 2 and commands them across the cluster', async () => {
    const [node1, node2] = await cluster('service');
    const service = await connected(node1, await newService('cl-svc'));
    const received = inbox(service);
    expect(await subscribe(service, 'devices/+/telemetry')).toBe(1);
    // Its profile does not reach beyond telemetry: another topic of the devices is refused (SUBACK 0x80, which MQTT.js
    // reports as a subscribe error).
    await expect(subscribe(service, 'devices/+/state')).rejects.toThrow(/Subscribe error/);
    const devices = await Promise.all([newDevice('cl-svc-a'), newDevice('cl-svc-b')]);
    const clientsOnNode2 = await Promise.all(devices.map((d) => connected(node2, d)));
    for (const [i, client] of clientsOnNode2.entries()) await publish(client, `devices/${devices[i]!.deviceId}/telemetry`, `reading-${i}`);
    await waitFor(() => received.length >= devices.length, 5000, 'telemetry of both devices at the service on node 1');
    expect(received.map((m) => m.payload).sort()).toEqual(['reading-0', 'reading-1']);

    // A command from the service on node 1 reaches the device on node 2.
    const commands = `devices/${devices[0]!.deviceId}/commands`;
    expect(await subscribe(clientsOnNode2[0]!, commands)).toBe(1);
    const command = nextMessage(clientsOnNode2[0]!, commands);
    await publish(service, commands, 'reboot');
    expect(await command).toBe('reboot');
  });

  it('a revoked device\'s will reaches no node, while a device that is not revoked gets its will delivered', async () => {
    const [node1, node2] = await cluster('wills');
    const service = await connected(node1, await newService('cl-will-svc'));
    const received = inbox(service);
    expect(await subscribe(service, 'devices/+/telemetry')).toBe(1);
    const [victim, control] = await Promise.all([newDevice('cl-will-rev'), newDevice('cl-will-ok')]);
    const willOf = (device: DeviceCert) => ({ topic: `devices/${device.deviceId}/telemetry`, payload: Buffer.from(`will-of-${device.deviceId}`), qos: 1 as const, retain: false });
    const victimClient = await connected(node2, victim, { will: willOf(victim) });
    const controlClient = await connected(node2, control, { will: willOf(control) });

    const cut = closed(victimClient);
    await revocationServiceFor(db.pool, pki).revokeDevice(victim.deviceId, { reason: 'keyCompromise', actor: 'cluster-test' });
    await cut;
    // The control device dies without a DISCONNECT after the cut: its will is published by node 2 after anything the
    // cut could have published, over the same bus, so its arrival on node 1 is the marker for the victim's absence.
    controlClient.stream.destroy();
    await waitFor(() => received.some((m) => m.payload === `will-of-${control.deviceId}`), 10_000, 'the control device\'s will on node 1');
    expect(received.filter((m) => m.payload === `will-of-${victim.deviceId}`)).toEqual([]);
  });

  it('the purge removes the queued QoS 1 messages of an offline persistent session from Redis, and repeats harmlessly', async () => {
    const [node1, node2] = await cluster('queued');
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const prefix = prefixes.at(-1)!;
      const device = await newDevice('cl-que');
      const commands = `devices/${device.deviceId}/commands`;
      const first = await connected(node1, device, { clean: false });
      expect(await subscribe(first, commands)).toBe(1);
      await endClient(first);
      await waitFor(() => node1.broker.connectedDevices() === 0, 5000, 'node 1 to see the device leave');
      for (let i = 0; i < 3; i++) await node2.broker.publish(commands, `queued-${i}`, 1);
      const queued = () => redis.llen(`${prefix}outgoing:${encodeURIComponent(device.deviceId)}`);
      await waitFor(async () => (await queued()) === 3, 5000, 'three messages queued in Redis for the offline session');

      // Both nodes hear the revocation and both purge the same keys: the second finds nothing, and nothing fails.
      await revocationServiceFor(db.pool, pki).revokeDevice(device.deviceId, { reason: 'keyCompromise', actor: 'cluster-test' });
      await waitFor(async () => (await queued()) === 0, 5000, 'the queued messages purged');
      expect(await redis.hlen(`${prefix}client:${encodeURIComponent(device.deviceId)}`)).toBe(0);
    } finally {
      redis.disconnect();
    }
  });

  it('a Redis outage degrades cross-node delivery with a metric, keeps revocation cutting, and recovers without a restart', async () => {
    const prefix = clusterPrefixFor('outage');
    prefixes.push(prefix);
    const redisTarget = new URL(TEST_REDIS_URL);
    const proxy = await startTcpProxy({ host: redisTarget.hostname, port: Number(redisTarget.port || 6379) });
    let redisCut = false;
    try {
      const node1 = await startTestBroker(db.url, db.pool, pki, { cluster: { prefix } });
      running.push(node1);
      const node2 = await startTestBroker(db.url, db.pool, pki, { cluster: { prefix, redisUrl: `redis://127.0.0.1:${proxy.port}` } });
      running.push(node2);
      const metric = (name: string, channel: string) => metricValue(node2.registry, name, { channel });

      const device = await newDevice('cl-out');
      const victim = await newDevice('cl-out-rev');
      const telemetry = `devices/${device.deviceId}/telemetry`;
      const onNode1 = await listen(node1, telemetry);
      const client = await connected(node2, device);
      const victimClient = await connected(node2, victim);

      await proxy.down();
      redisCut = true;
      await waitFor(() => !node2.broker.clusterBusConnected() && !node2.broker.clusterBusDataConnected(), 5000, 'node 2 to lose the bus');
      for (const channel of ['control', 'store', 'data']) {
        expect(await metric('enrolld_broker_cluster_bus_up', channel)).toBe(0);
        expect(await metric('enrolld_broker_cluster_bus_losses_total', channel)).toBe(1);
      }

      // Revocation does not travel over Redis: the node without its bus still cuts.
      const cut = closed(victimClient);
      await revocationServiceFor(db.pool, pki).revokeDevice(victim.deviceId, { reason: 'keyCompromise', actor: 'cluster-test' });
      await cut;

      await proxy.up();
      redisCut = false;
      await waitFor(() => node2.broker.clusterBusConnected(), 10_000, 'node 2 to reach the bus again');
      await waitFor(() => node2.broker.clusterBusDataConnected(), 10_000, 'node 2 to reach the data channel again');
      for (const channel of ['control', 'store', 'data']) expect(await metric('enrolld_broker_cluster_bus_up', channel)).toBe(1);
      // The same process, the same session: telemetry reaches node 1 again.
      client.publish(telemetry, 'after-outage', { qos: 1 });
      await waitFor(() => onNode1.received.some((p) => p.payload.toString() === 'after-outage'), 10_000, 'telemetry across nodes after the outage');
    } finally {
      // A node closing its bus waits for Redis: give it back before stopping.
      if (redisCut) await proxy.up();
      await Promise.all(running.splice(0).map((b) => b.stop()));
      await proxy.close();
    }
  });
});
