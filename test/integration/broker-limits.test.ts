// The per-identity broker limits (server/src/mqtt/limits.ts), each just under and just over, on real mutual-TLS
// connections: the packet size, retained messages (count and bytes), subscriptions per connection, publishes per
// second (token bucket) and inbound QoS 2 awaiting PUBREL. Over a limit the connection is closed, or the filter gets
// SUBACK 0x80, and `enrolld_broker_limit_refusals_total{reason}` counts it. A resolver gives one identity other limits.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient } from 'mqtt';
import { defaultConnectionLimits, type ConnectionLimits } from '../../server/src/mqtt/limits.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { createTestPki, deviceIdFor, type DeviceCert, type TestPki } from '../support/test-pki.js';
import { connectDevice, endClient, insertDevice, metricValue, report, startTestBroker, type TestBroker } from '../support/broker-harness.js';
import { rawConnect } from '../support/raw-mqtt.js';
import { waitFor } from '../support/wait-for.js';

const LIMITS: ConnectionLimits = {
  ...defaultConnectionLimits,
  maxPacketBytes: 1024,
  maxRetainedMessages: 3,
  maxRetainedBytes: 600,
  maxSubscriptions: 5,
  publishRatePerSecond: 10,
  publishBurst: 20,
  maxInflight: 3,
};

/** Total size of a QoS 0 PUBLISH with this topic and payload, for remaining lengths of 128..16383 (two length bytes). */
const publishSize = (topic: string, payloadBytes: number) => 1 + 2 + 2 + Buffer.byteLength(topic) + payloadBytes;

describe('per-identity broker limits', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let broker: TestBroker;
  let generous: DeviceCert;
  const clients: MqttClient[] = [];

  async function newDevice(prefix: string): Promise<DeviceCert> {
    const device = await pki.device(deviceIdFor(prefix));
    await insertDevice(db.pool, device);
    return device;
  }

  async function online(device: DeviceCert): Promise<MqttClient> {
    const outcome = await connectDevice(broker.port, pki, device);
    if (!outcome.ok) throw new Error(`expected ${device.deviceId} to connect: ${outcome.error}`);
    clients.push(outcome.client);
    return outcome.client;
  }

  const limited = (reason: string) => metricValue(broker.registry, 'enrolld_broker_limit_refusals_total', { reason });
  const closedOf = (client: MqttClient) => new Promise<void>((resolve) => client.once('close', () => resolve()));

  /** Publishes to the device's own echo topic and resolves when the broker delivered it back. */
  async function echo(client: MqttClient, deviceId: string, payload: Buffer): Promise<void> {
    const topic = `devices/${deviceId}/echo`;
    const back = new Promise<void>((resolve) => {
      const onMessage = (t: string, p: Buffer) => {
        if (t === topic && p.equals(payload)) {
          client.off('message', onMessage);
          resolve();
        }
      };
      client.on('message', onMessage);
    });
    client.publish(topic, payload, { qos: 0 });
    await back;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    pki = await createTestPki();
    generous = await newDevice('generous');
    const generousId = generous.deviceId;
    broker = await startTestBroker(db.url, db.pool, pki, {
      limits: LIMITS,
      limitsFor: (identity) => (identity.deviceId === generousId ? { ...LIMITS, maxPacketBytes: 4096 } : LIMITS),
    });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => endClient(c)));
    await broker?.stop();
    await db?.drop();
  });

  it('packet size: a packet of exactly the limit is delivered; one byte more, or a huge announced length, closes the connection', async () => {
    const device = await newDevice('size');
    const client = await online(device);
    const topic = `devices/${device.deviceId}/echo`;
    await client.subscribeAsync(topic);
    const fits = Buffer.alloc(LIMITS.maxPacketBytes - publishSize(topic, 0), 1);
    expect(publishSize(topic, fits.length)).toBe(LIMITS.maxPacketBytes);
    await echo(client, device.deviceId, fits);
    expect(await limited('packet-size')).toBe(0);
    const closed = closedOf(client);
    client.publish(topic, Buffer.alloc(fits.length + 1, 2), { qos: 0 });
    await closed;
    expect(await limited('packet-size')).toBe(1);

    // 200 MB announced in the fixed header: closed on the header, before any body is sent.
    const raw = await rawConnect(broker.port, pki, device);
    raw.write(Buffer.from([0x30, 0x80, 0x80, 0xe8, 0x5f, 0x00]));
    await raw.closed;
    expect(await limited('packet-size')).toBe(2);

    // The resolver's identity has its own, larger limit.
    const big = await online(generous);
    const generousTopic = `devices/${generous.deviceId}/echo`;
    await big.subscribeAsync(generousTopic);
    await echo(big, generous.deviceId, Buffer.alloc(3000, 3));
    expect(await limited('packet-size')).toBe(2);
  });

  it('retained messages: count — the limit of topics is kept, one more topic closes; overwriting and deleting stay allowed', async () => {
    const device = await newDevice('retained-count');
    let client = await online(device);
    for (let i = 0; i < LIMITS.maxRetainedMessages; i++) await client.publishAsync(`devices/${device.deviceId}/r${i}`, `v${i}`, { qos: 1, retain: true });
    await client.publishAsync(`devices/${device.deviceId}/r0`, 'overwritten', { qos: 1, retain: true });
    expect(await limited('retained-count')).toBe(0);
    const closed = closedOf(client);
    client.publish(`devices/${device.deviceId}/r-extra`, 'one too many', { qos: 1, retain: true });
    await closed;
    expect(await limited('retained-count')).toBe(1);
    // Deleting one (empty retained payload, MQTT-3.3.1-10) makes room for another.
    client = await online(device);
    await client.publishAsync(`devices/${device.deviceId}/r1`, '', { qos: 1, retain: true });
    await client.publishAsync(`devices/${device.deviceId}/r-extra`, 'fits now', { qos: 1, retain: true });
    const kept: string[] = [];
    client.on('message', (topic) => kept.push(topic));
    await client.subscribeAsync(`devices/${device.deviceId}/#`);
    await waitFor(() => kept.length === LIMITS.maxRetainedMessages, 3000, 'the retained messages');
    expect(kept.sort()).toEqual([`devices/${device.deviceId}/r-extra`, `devices/${device.deviceId}/r0`, `devices/${device.deviceId}/r2`]);
    expect(await limited('retained-count')).toBe(1);
  });

  it('retained messages: bytes — exactly the limit is kept, one byte more closes the connection', async () => {
    const device = await newDevice('retained-bytes');
    const client = await online(device);
    const half = LIMITS.maxRetainedBytes / 2;
    await client.publishAsync(`devices/${device.deviceId}/a`, Buffer.alloc(half, 1), { qos: 1, retain: true });
    await client.publishAsync(`devices/${device.deviceId}/b`, Buffer.alloc(half, 2), { qos: 1, retain: true });
    expect(await limited('retained-bytes')).toBe(0);
    const closed = closedOf(client);
    client.publish(`devices/${device.deviceId}/b`, Buffer.alloc(half + 1, 3), { qos: 1, retain: true });
    await closed;
    expect(await limited('retained-bytes')).toBe(1);
  });

  it('subscriptions: the limit of filters is granted, one more gets SUBACK 0x80 and the session goes on; an unsubscribe frees a place', async () => {
    const device = await newDevice('subs');
    const client = await online(device);
    const granted: number[] = [];
    for (let i = 0; i < LIMITS.maxSubscriptions; i++) granted.push(...(await client.subscribeAsync(`devices/${device.deviceId}/s${i}`, { qos: 1 })).map((g) => g.qos));
    expect(granted).toEqual(Array(LIMITS.maxSubscriptions).fill(1));
    const over = await client.subscribeAsync(`devices/${device.deviceId}/s-extra`, { qos: 1 }).then(
      (g) => g.map((x) => x.qos),
      (error: { packet?: { granted?: number[] } }) => error.packet?.granted ?? [],
    );
    expect(over).toEqual([128]);
    expect(await limited('subscriptions')).toBe(1);
    // Resubscribing to a filter it holds is no new subscription.
    expect((await client.subscribeAsync(`devices/${device.deviceId}/s0`, { qos: 0 })).map((g) => g.qos)).toEqual([0]);
    await client.unsubscribeAsync(`devices/${device.deviceId}/s1`);
    expect((await client.subscribeAsync(`devices/${device.deviceId}/s-extra`, { qos: 1 })).map((g) => g.qos)).toEqual([1]);
    expect(client.connected).toBe(true);
    expect(await limited('subscriptions')).toBe(1);
  });

  it('publish rate: a burst is delivered at once, a second burst waits for tokens, more than a burst of debt closes', async () => {
    const device = await newDevice('rate');
    const client = await online(device);
    const topic = `devices/${device.deviceId}/echo`;
    await client.subscribeAsync(topic);
    const delivered: string[] = [];
    client.on('message', (_t, p) => delivered.push(p.toString()));
    const delayed = () => metricValue(broker.registry, 'enrolld_broker_publishes_delayed_total');
    const delayedBefore = await delayed();
    // One burst: no publish waits.
    for (let i = 0; i < LIMITS.publishBurst; i++) client.publish(topic, `a${i}`, { qos: 0 });
    await waitFor(() => delivered.length === LIMITS.publishBurst, 5000, 'the first burst');
    expect(await delayed()).toBe(delayedBefore);
    // A second burst at once: within a burst of debt, so it waits for tokens and is all delivered.
    const started = Date.now();
    for (let i = 0; i < LIMITS.publishBurst; i++) client.publish(topic, `b${i}`, { qos: 0 });
    await waitFor(() => delivered.length === 2 * LIMITS.publishBurst, 10_000, 'the second burst');
    const secondBurstMs = Date.now() - started;
    expect(await delayed()).toBeGreaterThan(delayedBefore);
    expect(await limited('publish-rate')).toBe(0);
    expect(client.connected).toBe(true);
    // More than a burst of debt at once: the connection is closed.
    const closed = closedOf(client);
    for (let i = 0; i <= 2 * LIMITS.publishBurst; i++) client.publish(topic, `c${i}`, { qos: 0 });
    await closed;
    expect(await limited('publish-rate')).toBe(1);
    report('BRK-LIMIT-RATE', true, { ratePerSecond: LIMITS.publishRatePerSecond, burst: LIMITS.publishBurst, secondBurstMs });
  });

  it('inflight: the limit of QoS 2 publishes awaiting PUBREL is accepted, one more closes; a PUBREL frees a place', async () => {
    const device = await newDevice('inflight');
    const topic = `devices/${device.deviceId}/q2`;
    const raw = await rawConnect(broker.port, pki, device);
    for (let id = 1; id <= LIMITS.maxInflight; id++) {
      raw.send({ cmd: 'publish', topic, payload: Buffer.from(`m${id}`), qos: 2, messageId: id, retain: false, dup: false });
      expect(await raw.next('pubrec')).toMatchObject({ messageId: id });
    }
    // A retransmission of one already awaiting PUBREL is no new message.
    raw.send({ cmd: 'publish', topic, payload: Buffer.from('m1'), qos: 2, messageId: 1, retain: false, dup: true });
    expect(await raw.next('pubrec')).toMatchObject({ messageId: 1 });
    raw.send({ cmd: 'pubrel', messageId: 1 });
    expect(await raw.next('pubcomp')).toMatchObject({ messageId: 1 });
    raw.send({ cmd: 'publish', topic, payload: Buffer.from('m4'), qos: 2, messageId: 4, retain: false, dup: false });
    expect(await raw.next('pubrec')).toMatchObject({ messageId: 4 });
    expect(await limited('inflight')).toBe(0);
    raw.send({ cmd: 'publish', topic, payload: Buffer.from('m5'), qos: 2, messageId: 5, retain: false, dup: false });
    await raw.closed;
    expect(await limited('inflight')).toBe(1);
  });
});
