// `npm run bench:cluster`: the broker cluster on Redis, measured in one run. Brokers and MQTT clients share this process
// (a figure of the cluster path, not of a deployment). One JSON line per figure: {"metric","value","unit","baseline","ratio"}.
//  - publish latency, device on node 2 → listener on node 1 (through Redis), against device → listener on the same node;
//  - QoS 0 messages per second delivered to a listener: one single-node broker (in-memory) against two cluster nodes with
//    the publishing devices split between them.
import type { PublishPacket } from 'aedes';
import type { MqttClient } from 'mqtt';
import { createTestDatabase } from '../support/pg.js';
import { createTestPki, deviceIdFor, type DeviceCert } from '../support/test-pki.js';
import { clusterPrefixFor, connectDevice, dropClusterKeys, endClient, insertDevice, percentile, revocationServiceFor, startTestBroker, type TestBroker } from '../support/broker-harness.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 500);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const DEVICES = Number(process.env.BENCH_DEVICES ?? 20);

const db = await createTestDatabase();
const pki = await createTestPki();
await revocationServiceFor(db.pool, pki).ensureCrlCurrent();
const line = (figure: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(figure)}\n`);

async function devices(n: number, prefix: string): Promise<DeviceCert[]> {
  const out: DeviceCert[] = [];
  for (let i = 0; i < n; i++) {
    const device = await pki.device(deviceIdFor(prefix));
    await insertDevice(db.pool, device);
    out.push(device);
  }
  return out;
}

async function connect(node: TestBroker, device: DeviceCert): Promise<MqttClient> {
  const outcome = await connectDevice(node.port, pki, device);
  if (!outcome.ok) throw new Error(outcome.error);
  return outcome.client;
}

function listen(node: TestBroker, topic: string, onPacket: (packet: PublishPacket) => void): Promise<void> {
  return new Promise((resolve) => node.broker.aedes()!.subscribe(topic, (packet: PublishPacket, done: () => void) => { onPacket(packet); done(); }, () => resolve()));
}

/** One publish at a time, each timed from send to arrival at the listener's node. */
async function latencies(publisher: MqttClient, topic: string, listenerNode: TestBroker): Promise<number[]> {
  let arrived: ((t: number) => void) | undefined;
  await listen(listenerNode, topic, () => arrived?.(performance.now()));
  const samples: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const got = new Promise<number>((resolve) => (arrived = resolve));
    const t0 = performance.now();
    publisher.publish(topic, String(i), { qos: 0 });
    samples.push((await got) - t0);
  }
  return samples.sort((a, b) => a - b);
}

/** QoS 0 publishes from every client for SECONDS; the figure counts arrivals at a listener on `sink` within the window. */
async function throughput(clients: MqttClient[], sink: TestBroker): Promise<number> {
  let delivered = 0;
  let stopAt = Infinity;
  await listen(sink, 'devices/+/telemetry', () => {
    if (performance.now() <= stopAt) delivered++;
  });
  stopAt = performance.now() + SECONDS * 1000;
  await Promise.all(clients.map(async (client) => {
    const topic = `devices/${client.options.clientId as string}/telemetry`;
    while (performance.now() < stopAt) {
      // Bounded by the socket: wait for the write callback every 50 messages so the client does not buffer without end.
      for (let i = 0; i < 49; i++) client.publish(topic, 'x', { qos: 0 });
      await new Promise<void>((resolve) => client.publish(topic, 'x', { qos: 0 }, () => resolve()));
    }
  }));
  return delivered / SECONDS;
}

const prefix = clusterPrefixFor('bench');
try {
  // Latency: one device on node 2, listeners on node 1 (across) and node 2 (same node, the baseline).
  const [node1, node2] = [await startTestBroker(db.url, db.pool, pki, { cluster: { prefix } }), await startTestBroker(db.url, db.pool, pki, { cluster: { prefix } })];
  const [device] = await devices(1, 'bench-lat');
  const client = await connect(node2, device!);
  const across = await latencies(client, `devices/${device!.deviceId}/telemetry`, node1);
  const same = await latencies(client, `devices/${device!.deviceId}/state`, node2);
  for (const p of [0.5, 0.99] as const) {
    const name = p === 0.5 ? 'p50' : 'p99';
    const value = percentile(across, p);
    const baseline = percentile(same, p);
    line({ metric: `cluster_cross_node_publish_latency_${name}`, value: +value.toFixed(3), unit: 'ms', baseline: +baseline.toFixed(3), baselineOf: 'same node, cluster on', ratio: +(baseline / value).toFixed(3), samples: SAMPLES });
  }
  await endClient(client);

  // Throughput: 2 cluster nodes, devices split between them, the listener on node 1.
  const fleet = await devices(DEVICES, 'bench-tp');
  const split = await Promise.all(fleet.map((d, i) => connect(i % 2 === 0 ? node1 : node2, d)));
  const twoNodes = await throughput(split, node1);
  await Promise.all(split.map((c) => endClient(c)));
  await node1.stop();
  await node2.stop();

  // Baseline: one single-node broker, in memory, the same devices.
  const single = await startTestBroker(db.url, db.pool, pki);
  const alone = await Promise.all(fleet.map((d) => connect(single, d)));
  const oneNode = await throughput(alone, single);
  await Promise.all(alone.map((c) => endClient(c)));
  await single.stop();
  line({ metric: 'cluster_two_nodes_messages_per_second', value: Math.round(twoNodes), unit: 'msg/s', baseline: Math.round(oneNode), baselineOf: 'one node, in memory', ratio: +(twoNodes / oneNode).toFixed(3), devices: DEVICES, seconds: SECONDS });
} finally {
  await dropClusterKeys(prefix);
  await db.drop();
}
