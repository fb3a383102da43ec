// The per-identity broker limits (server/src/mqtt/limits.ts), each just under and just over, on real mutual-TLS
// connections: the packet size, retained messages (count and bytes), subscriptions per connection, publishes per
// second (token bucket), inbound QoS 2 awaiting PUBREL, outbound QoS 1/2 awaiting the device's acknowledgement (the
// window and its session queue, with a raw client that acknowledges only when told) and CONNECTs per identity. Over
// a limit the connection is closed, the filter gets SUBACK 0x80, a message waits or a QoS 0 one is dropped, or the
// CONNECT gets CONNACK 3, each counted on /metrics. A resolver gives one identity other limits.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { MqttClient } from 'mqtt';
import type { IPublishPacket } from 'mqtt-packet';
import { defaultConnectionLimits, type ConnectionLimits } from '../../server/src/mqtt/limits.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { createTestPki, deviceIdFor, type DeviceCert, type TestPki } from '../support/test-pki.js';
import { connectDevice, endClient, insertDevice, metricValue, report, startTestBroker, type TestBroker } from '../support/broker-harness.js';
import { rawConnect, type RawMqtt } from '../support/raw-mqtt.js';
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
  maxOutboundInflight: 3,
  maxQueuedMessages: 3,
  connectRatePerSecond: 2,
  connectBurst: 3,
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
  describe('outbound window (QoS 1/2 sent to the device, awaiting its acknowledgement)', () => {
    const queued = () => metricValue(broker.registry, 'enrolld_broker_outbound_queued_total');
    const dropped = () => metricValue(broker.registry, 'enrolld_broker_outbound_dropped_total');
    const deliveries = (raw: RawMqtt, topic: string) => raw.received.filter((p): p is IPublishPacket => p.cmd === 'publish' && p.topic === topic);
    let nextId = 1;

    /** The device publishes to its own topic (QoS 1: once the broker's PUBACK is back, the message was routed). */
    async function publishQos1(raw: RawMqtt, topic: string, payload: string): Promise<void> {
      const messageId = nextId++;
      raw.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, messageId, retain: false, dup: false });
      await waitFor(() => raw.received.some((p) => p.cmd === 'puback' && p.messageId === messageId), 5000, `the PUBACK of ${payload}`);
    }

    async function subscribed(raw: RawMqtt, subscriptions: Array<{ topic: string; qos: 0 | 1 | 2 }>): Promise<void> {
      raw.send({ cmd: 'subscribe', messageId: nextId++, subscriptions });
      await raw.next('suback');
    }

    it('the limit of unacknowledged QoS 1 messages is sent at once; one more waits until a PUBACK frees a place', async () => {
      const device = await newDevice('outbound');
      const topic = `devices/${device.deviceId}/out`;
      const raw = await rawConnect(broker.port, pki, device);
      await subscribed(raw, [{ topic, qos: 1 }]);
      const queuedBefore = await queued();
      for (let i = 1; i <= LIMITS.maxOutboundInflight; i++) await publishQos1(raw, topic, `m${i}`);
      await waitFor(() => deliveries(raw, topic).length === LIMITS.maxOutboundInflight, 5000, 'the window of deliveries');
      expect(await queued()).toBe(queuedBefore);
      // One over: it waits in the session queue (counted), and nothing more is sent.
      await publishQos1(raw, topic, 'waits');
      await waitFor(async () => (await queued()) === queuedBefore + 1, 5000, 'the message to wait');
      expect(deliveries(raw, topic).map((p) => p.payload.toString())).toEqual(['m1', 'm2', 'm3']);
      // The device acknowledges one: the waiting message is sent, with an id none of those in flight has.
      const [first, ...unacknowledged] = deliveries(raw, topic);
      raw.send({ cmd: 'puback', messageId: first!.messageId! });
      await waitFor(() => deliveries(raw, topic).length === LIMITS.maxOutboundInflight + 1, 5000, 'the waiting message');
      const sent = deliveries(raw, topic).at(-1)!;
      expect(sent).toMatchObject({ qos: 1, payload: Buffer.from('waits') });
      expect(unacknowledged.map((p) => p.messageId)).not.toContain(sent.messageId);
      expect(raw.socket.destroyed).toBe(false);
      raw.end();
    });

    it('QoS 2: a place is freed by the PUBCOMP, not by the PUBREC', async () => {
      const device = await newDevice('outbound-q2');
      const topic = `devices/${device.deviceId}/q2out`;
      const raw = await rawConnect(broker.port, pki, device);
      await subscribed(raw, [{ topic, qos: 2 }]);
      const publishQos2 = async (payload: string) => {
        const messageId = nextId++;
        raw.send({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 2, messageId, retain: false, dup: false });
        await waitFor(() => raw.received.some((p) => p.cmd === 'pubrec' && p.messageId === messageId), 5000, `the PUBREC of ${payload}`);
        raw.send({ cmd: 'pubrel', messageId });
        await waitFor(() => raw.received.some((p) => p.cmd === 'pubcomp' && p.messageId === messageId), 5000, `the PUBCOMP of ${payload}`);
      };
      const queuedBefore = await queued();
      for (let i = 1; i <= LIMITS.maxOutboundInflight; i++) await publishQos2(`m${i}`);
      await waitFor(() => deliveries(raw, topic).length === LIMITS.maxOutboundInflight, 5000, 'the window of deliveries');
      await publishQos2('waits');
      await waitFor(async () => (await queued()) === queuedBefore + 1, 5000, 'the message to wait');
      const first = deliveries(raw, topic)[0]!;
      raw.send({ cmd: 'pubrec', messageId: first.messageId! });
      await waitFor(() => raw.received.some((p) => p.cmd === 'pubrel' && p.messageId === first.messageId), 5000, 'the broker\'s PUBREL');
      raw.send({ cmd: 'pingreq' });
      await raw.next('pingresp');
      expect(deliveries(raw, topic)).toHaveLength(LIMITS.maxOutboundInflight);
      raw.send({ cmd: 'pubcomp', messageId: first.messageId! });
      await waitFor(() => deliveries(raw, topic).length === LIMITS.maxOutboundInflight + 1, 5000, 'the waiting message');
      expect(deliveries(raw, topic).at(-1)).toMatchObject({ qos: 2, payload: Buffer.from('waits') });
      raw.end();
    });

    it('a full session queue drops QoS 0 (the arriving one, or the oldest queued for a QoS 1) and the session goes on; a QoS 1 with no QoS 0 to drop ends it', async () => {
      const device = await newDevice('outbound-full');
      const q1 = `devices/${device.deviceId}/q1`;
      const q0 = `devices/${device.deviceId}/q0`;
      const raw = await rawConnect(broker.port, pki, device);
      await subscribed(raw, [{ topic: q1, qos: 1 }, { topic: q0, qos: 0 }]);
      const [queuedBefore, droppedBefore, closedBefore] = [await queued(), await dropped(), await limited('outbound-queue')];
      for (let i = 1; i <= LIMITS.maxOutboundInflight; i++) await publishQos1(raw, q1, `in-flight-${i}`);
      await waitFor(() => deliveries(raw, q1).length === LIMITS.maxOutboundInflight, 5000, 'the window of deliveries');
      // The queue, filled: two QoS 1 messages and a QoS 0 one behind them.
      await publishQos1(raw, q1, 'queued-1');
      await publishQos1(raw, q1, 'queued-2');
      raw.send({ cmd: 'publish', topic: q0, payload: Buffer.from('queued-qos0'), qos: 0, retain: false, dup: false });
      await waitFor(async () => (await queued()) === queuedBefore + LIMITS.maxQueuedMessages, 5000, 'a full queue');
      // A QoS 0 message finds it full: dropped.
      raw.send({ cmd: 'publish', topic: q0, payload: Buffer.from('dropped-qos0'), qos: 0, retain: false, dup: false });
      await waitFor(async () => (await dropped()) === droppedBefore + 1, 5000, 'the QoS 0 message to be dropped');
      // A QoS 1 message finds it full: the queued QoS 0 message makes room for it.
      await publishQos1(raw, q1, 'queued-3');
      await waitFor(async () => (await dropped()) === droppedBefore + 2, 5000, 'the queued QoS 0 message to be dropped');
      expect(await limited('outbound-queue')).toBe(closedBefore);
      expect(raw.socket.destroyed).toBe(false);
      // Now it holds QoS 1 messages only: one more ends the session.
      raw.send({ cmd: 'publish', topic: q1, payload: Buffer.from('one too many'), qos: 1, messageId: nextId++, retain: false, dup: false });
      await raw.closed;
      expect(await limited('outbound-queue')).toBe(closedBefore + 1);
      expect(deliveries(raw, q1).map((p) => p.payload.toString())).toEqual(['in-flight-1', 'in-flight-2', 'in-flight-3']);
      expect(deliveries(raw, q0)).toEqual([]);
    });
  });

  it('CONNECT rate: a burst of CONNECTs of one identity is admitted, one more gets CONNACK 3 once a token is due, and the next is admitted', async () => {
    const device = await newDevice('reconnect');
    const rateRefusals = () => metricValue(broker.registry, 'enrolld_broker_connect_refusals_total', { reason: 'connect-rate' });
    const before = await rateRefusals();
    for (let i = 0; i < LIMITS.connectBurst; i++) {
      const raw = await rawConnect(broker.port, pki, device);
      raw.send({ cmd: 'disconnect' });
      await raw.closed;
    }
    expect(await rateRefusals()).toBe(before);
    const over = await rawConnect(broker.port, pki, device, { connect: false });
    over.send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: device.deviceId, keepalive: 60 });
    expect(await over.next('connack')).toMatchObject({ returnCode: 3 });
    await over.closed;
    expect(await rateRefusals()).toBe(before + 1);
    // The refusal was held until the bucket would hold a token again: a device that waits for its CONNACK gets in next.
    const again = await rawConnect(broker.port, pki, device);
    again.end();
    expect(await rateRefusals()).toBe(before + 1);
  });
});
