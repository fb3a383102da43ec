// `npm run bench:cluster`: the broker cluster on Redis as it is deployed, each broker its own `enrolld broker` process:
// the local cluster form (`server/scripts/cluster.mjs`: 1 API + 2 brokers over Postgres and Redis), started through
// the simulator's ClusterProcess and driven from this process over the wire only. Devices and services are enrolled
// through the API. One JSON line per figure: {"metric","value","unit","baseline","ratio",…}.
//  - publish latency p50/p99, device on node 2 → service on node 1 (through Redis), against the same publishes to a
//    service on node 2 (same node);
//  - QoS 0 messages per second delivered to a service on node 1: every publisher on node 1 (1 node), then the
//    publishers split over both nodes (2 nodes), in the same run, ratio printed;
//  - idle memory per connection at BENCH_CONNECTIONS on node 1 (node 2 the same, or what this process's open-file limit
//    leaves: every client socket is a descriptor here): RSS growth of each broker process after a full GC
//    (test/bench/memory-hook.cjs, preloaded), split into V8 heap, external buffers and native memory (OpenSSL, libuv,
//    malloc), against stock aedes and Mosquitto at the same count (the harness of bench:broker).
// Env: BENCH_CONNECTIONS (per node, default 2000), BENCH_DEVICES (publishers, 20), BENCH_SECONDS (5), BENCH_SAMPLES
// (500), BENCH_ROUNDS (2 measured, after one warm-up), BENCH_PHASES (latency,throughput,memory,baselines), BENCH_HEAP_SNAPSHOT=1 (heap snapshots of
// node 1 before and after: the heap growth per connection by constructor).
import { generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { topics } from '@enrolld/protocol';
import { buildCsr, ClusterProcess, clientCertChain, createAdminClient, createHttpTransport, issuedFromRest } from '@enrolld/device-sim';
import { createTestDatabase } from '../support/pg.js';
import { createTestPki, newKeys, type DeviceCert } from '../support/test-pki.js';
import { dropClusterKeys, percentile, TEST_REDIS_URL } from '../support/broker-harness.js';
import { startMosquitto } from '../support/broker-mosquitto.js';
import { freePort } from '../support/processes.js';
import { contextFor, gcAndRss, idleLoad, line, procStat, sleep, startNodeBroker, writeBrokerMaterial, type ClientIdentity } from './bench-support.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 2000);
const DEVICES = Number(process.env.BENCH_DEVICES ?? 20);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const PHASES = new Set((process.env.BENCH_PHASES ?? 'latency,throughput,memory,baselines').split(','));
const HEAP_SNAPSHOT = process.env.BENCH_HEAP_SNAPSHOT === '1';
const HOOK = fileURLToPath(new URL('./memory-hook.cjs', import.meta.url));
const log = (m: string) => process.stderr.write(`${m}\n`);

const db = await createTestDatabase();
const memDir = await mkdtemp(path.join(tmpdir(), 'enrolld-bench-mem-'));
const cluster = new ClusterProcess({
  brokers: 2, databaseUrl: db.url, redisUrl: TEST_REDIS_URL, logFile: path.join(memDir, 'cluster.log'),
  // the per-connection publish limit is lifted: the throughput phase floods on purpose
  env: {
    NODE_OPTIONS: `--require ${HOOK}`, BENCH_MEMORY_DIR: memDir, ...(HEAP_SNAPSHOT ? { BENCH_HEAP_SNAPSHOT: '1' } : {}),
    BROKER_PUBLISH_RATE: '1000000', BROKER_PUBLISH_BURST: '1000000',
  },
});
const cache = new Map<string, tls.SecureContext>();
/** the cluster node's idle KiB per connection, the baseline of the stock-aedes and Mosquitto lines */
let enrolldPerConn: number | undefined;

function keyPair(): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return new Promise((resolve, reject) => generateKeyPair('ec', { namedCurve: 'P-256' }, (e, publicKey, privateKey) => (e ? reject(e) : resolve({ publicKey, privateKey }))));
}

function clientFor(port: number, who: ClientIdentity, ca: string): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect({
      protocol: 'mqtts', host: '127.0.0.1', port, servername: 'localhost', secureContext: contextFor(who, ca, cache), noDelay: true,
      clientId: who.deviceId, protocolVersion: 4, clean: true, keepalive: 600, reconnectPeriod: 0, connectTimeout: 30_000,
    } as mqtt.IClientOptions);
    c.once('connect', () => {
      c.on('error', () => {}); // a later failure shows up as a close, which the phases watch
      resolve(c);
    });
    c.once('error', (e) => (c.end(true), reject(e)));
  });
}

const endAll = (clients: MqttClient[]) => Promise.all(clients.map((c) => new Promise<void>((r) => c.end(true, {}, () => r()))));

/** Full GC in the broker, then its process.memoryUsage(), written by the preloaded hook. */
const signalled = new Map<number, number>();
async function brokerMemory(pid: number): Promise<{ rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number; snapshot: string }> {
  const n = (signalled.get(pid) ?? 0) + 1;
  signalled.set(pid, n);
  const file = path.join(memDir, `${pid}-${n}.json`);
  process.kill(pid, 'SIGUSR2');
  const deadline = performance.now() + 300_000;
  while (!existsSync(file)) {
    if (performance.now() > deadline) throw new Error(`broker ${pid} wrote no memory figures`);
    await sleep(50);
  }
  return { ...(JSON.parse(await readFile(file, 'utf8')) as { rss: number; heapTotal: number; heapUsed: number; external: number; arrayBuffers: number }), snapshot: path.join(memDir, `${pid}-${n}.heapsnapshot`) };
}

/** Self size by constructor (objects) or node type (strings, code, arrays …) of a V8 heap snapshot. */
async function heapBySort(file: string): Promise<Map<string, { size: number; count: number }>> {
  const chunks: Buffer[] = [];
  for await (const c of createReadStream(file)) chunks.push(c as Buffer);
  const snap = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = [fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];
  const out = new Map<string, { size: number; count: number }>();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + iType]!]!;
    const key = type === 'object' || type === 'native' ? `${type}:${snap.strings[snap.nodes[i + iName]!]}` : type;
    const e = out.get(key) ?? { size: 0, count: 0 };
    e.size += snap.nodes[i + iSize]!;
    e.count++;
    out.set(key, e);
  }
  return out;
}

try {
  const t0 = performance.now();
  await cluster.start();
  log(`cluster up in ${((performance.now() - t0) / 1000).toFixed(1)}s: API ${cluster.apiUrl}, brokers ${cluster.brokerUrls.join(' ')} (log ${cluster.logFile})`);
  const [node1, node2] = cluster.brokers as [typeof cluster.brokers[0], typeof cluster.brokers[0]];
  const ca = await readFile(cluster.caFile, 'utf8');
  const apiUrl = new URL(cluster.apiUrl);
  const admin = createAdminClient(apiUrl, ca, (await readFile(cluster.adminTokenFile, 'utf8')).trim());
  const http = createHttpTransport({ apiUrl, ca, sendChain: true, maxSockets: 50, timeoutMs: 120_000 });

  /** n devices enrolled through the API (REST), 50 in flight: key, CSR, certificate, as a device does. */
  async function enroll(n: number, prefix: string): Promise<ClientIdentity[]> {
    const tokens = await admin.createTokens(prefix, n);
    const out: ClientIdentity[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 50 }, async () => {
      for (let t = tokens[next++]; t; t = tokens[next++]) {
        const { publicKey, privateKey } = await keyPair();
        const issued = await http.enroll('rest', t.deviceId, t.token, buildCsr(t.deviceId, publicKey, privateKey), privateKey);
        out.push({ deviceId: t.deviceId, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), chainPem: clientCertChain(issued, true) });
      }
    }));
    return out;
  }

  /** A service identity (POST /v1/admin/services) subscribed to every device's telemetry on one node. */
  async function service(name: string, port: number, onTelemetry: (payload: Buffer) => void): Promise<MqttClient> {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const issued = issuedFromRest(await admin.createService(name, buildCsr(name, publicKey, privateKey, 'service').pem), privateKey);
    const client = await clientFor(port, { deviceId: name, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), chainPem: clientCertChain(issued, true) }, ca);
    client.on('message', (_topic, payload) => onTelemetry(payload));
    await new Promise<void>((resolve, reject) => client.subscribe(topics.allTelemetry, { qos: 0 }, (e) => (e ? reject(e) : resolve())));
    return client;
  }

  const suffix = Math.random().toString(36).slice(2, 8);
  // memory first, on brokers that have carried no traffic yet
  if (PHASES.has('memory')) {

    const te = performance.now();
    // Every client socket is a file descriptor of this process: node 2 gets what the limit leaves after node 1's
    // (the line says how many each node carried).
    const fdLimit = Number(/Max open files\s+(\d+)/.exec(await readFile('/proc/self/limits', 'utf8'))?.[1] ?? Infinity);
    const second = Math.max(0, Math.min(CONNECTIONS, fdLimit - CONNECTIONS - 1000));
    if (second < CONNECTIONS) log(`open-file limit ${fdLimit}: node 2 carries ${second} connections`);
    log(`enrolling ${CONNECTIONS + second} devices through the API…`);
    const fleet = await enroll(CONNECTIONS + second, `bench-idle-${suffix}-`);
    log(`enrolled in ${((performance.now() - te) / 1000).toFixed(1)}s`);
    const before = [await brokerMemory(node1.pid), await brokerMemory(node2.pid)];
    const tc = performance.now();
    const clients = await Promise.all([idleLoad(node1.port, fleet.slice(0, CONNECTIONS), ca, cache), idleLoad(node2.port, fleet.slice(CONNECTIONS), ca, cache)]);
    const connectS = (performance.now() - tc) / 1000;
    const connected = clients.map((c) => c.length);
    line('cluster_idle_connect_all_seconds', connectS, 's', null, null, { connections: connected, nodes: 2, inFlightPerNode: 20, note: 'mTLS handshake + CONNECT, no subscription' });
    const after = [await brokerMemory(node1.pid), await brokerMemory(node2.pid)];
    const kib = (bytes: number, n: number) => bytes / 1024 / n;
    const perNode = [0, 1].filter((i) => connected[i]! > 0).map((i) => {
      const [b, a, n] = [before[i]!, after[i]!, connected[i]!];
      return {
        rss: kib(a.rss - b.rss, n),
        heap: kib(a.heapUsed - b.heapUsed, n),
        external: kib(a.external - b.external, n),
        native: kib(a.rss - a.heapTotal - a.external - (b.rss - b.heapTotal - b.external), n),
        heapReserved: kib(a.heapTotal - a.heapUsed - (b.heapTotal - b.heapUsed), n),
      };
    });
    log(`idle KiB/conn: ${perNode.map((p, i) => `node ${i + 1} ${JSON.stringify(p)}`).join(', ')}`);
    // the figure is node 1's, which carries BENCH_CONNECTIONS; node 2's is beside it
    const n1 = perNode[0]!;
    enrolldPerConn = n1.rss;
    line('cluster_idle_rss_per_connection', n1.rss, 'KiB/conn', null, null, {
      connectionsPerNode: connected, goal: 40, perNode: perNode.map((p) => +p.rss.toFixed(2)),
      split: { v8HeapUsed: +n1.heap.toFixed(2), v8HeapReservedUnused: +n1.heapReserved.toFixed(2), external: +n1.external.toFixed(2), nativeRest: +n1.native.toFixed(2) },
      ...(HEAP_SNAPSHOT ? { distorted: 'heap snapshots were written: their native memory stays in RSS' } : {}),
      includes: 'RSS growth of the enrolld broker process after a full GC, from 0 to N idle mTLS sessions (no subscription); nativeRest = RSS - heapTotal - external (OpenSSL SSL objects and buffers, libuv, malloc arenas)',
    });
    if (HEAP_SNAPSHOT) {
      const [b, a] = [await heapBySort(before[0]!.snapshot), await heapBySort(after[0]!.snapshot)];
      const growth = [...a.entries()].map(([k, v]) => ({ sort: k, bytesPerConn: (v.size - (b.get(k)?.size ?? 0)) / connected[0]!, perConn: (v.count - (b.get(k)?.count ?? 0)) / connected[0]! }))
        .sort((x, y) => y.bytesPerConn - x.bytesPerConn).slice(0, 15).map((g) => ({ ...g, bytesPerConn: Math.round(g.bytesPerConn), perConn: +g.perConn.toFixed(2) }));
      process.stdout.write(`${JSON.stringify({ metric: 'cluster_idle_heap_growth_by_constructor', node: 1, connections: connected[0], top: growth })}\n`);
    }
    await Promise.all(clients.map(endAll));
  }

  if (PHASES.has('latency') || PHASES.has('throughput')) {
    const publishers = await enroll(DEVICES + 1, `bench-pub-${suffix}-`);
    let onA: (p: Buffer) => void = () => {};
    let onB: (p: Buffer) => void = () => {};
    const svcA = await service(`bench-a-${suffix}`, node1.port, (p) => onA(p));

    if (PHASES.has('latency')) {
      // One device on node 2; every publish timed to its arrival at the service on node 1 (across) and on node 2 (same).
      const svcB = await service(`bench-b-${suffix}`, node2.port, (p) => onB(p));
      const device = await clientFor(node2.port, publishers[DEVICES]!, ca);
      const topic = topics.telemetry(publishers[DEVICES]!.deviceId);
      const across: number[] = [];
      const same: number[] = [];
      for (let i = 0; i < SAMPLES + 20; i++) {
        const body = String(i);
        const t = performance.now();
        const arrivals = Promise.all([
          new Promise<number>((r) => (onA = (p) => p.toString() === body && r(performance.now() - t))),
          new Promise<number>((r) => (onB = (p) => p.toString() === body && r(performance.now() - t))),
        ]);
        device.publish(topic, body, { qos: 0 });
        const [a, b] = await arrivals;
        if (i >= 20) (across.push(a), same.push(b)); // the first 20 warm the path up
      }
      across.sort((x, y) => x - y);
      same.sort((x, y) => x - y);
      for (const [name, p] of [['p50', 0.5], ['p99', 0.99]] as const) {
        const value = percentile(across, p);
        const baseline = percentile(same, p);
        line(`cluster_cross_node_publish_latency_${name}`, value, 'ms', baseline, baseline / value, { baselineOf: 'same publishes to a service on the publisher\'s node', samples: SAMPLES, brokers: 'enrolld broker processes' });
      }
      onA = () => {};
      onB = () => {};
      await endAll([device, svcB]);
    }

    if (PHASES.has('throughput')) {
      /** QoS 0 from every client for SECONDS; counts arrivals at the service on node 1 within the window. */
      async function throughput(ports: number[]): Promise<{ perSecond: number; node1CpuS: number; node2CpuS: number; drained: boolean }> {
        const clients = await Promise.all(publishers.slice(0, DEVICES).map((d, i) => clientFor(ports[i % ports.length]!, d, ca)));
        let delivered = 0;
        let stopAt = Infinity;
        onA = () => {
          if (performance.now() <= stopAt) delivered++;
        };
        const cpu0 = [procStat(node1.pid).cpuS, procStat(node2.pid).cpuS];
        stopAt = performance.now() + SECONDS * 1000;
        await Promise.all(clients.map(async (client) => {
          const topic = topics.telemetry(client.options.clientId as string);
          let closed = false;
          const gone = new Promise<void>((resolve) => client.once('close', () => ((closed = true), resolve())));
          while (performance.now() < stopAt && !closed) {
            // bounded by the socket: wait for the write callback every 50 messages (or the close of a refused client)
            for (let i = 0; i < 49; i++) client.publish(topic, 'x', { qos: 0 });
            await Promise.race([gone, new Promise<void>((resolve) => client.publish(topic, 'x', { qos: 0 }, () => resolve()))]);
          }
          if (closed) throw new Error(`${client.options.clientId as string} was disconnected during the flood (see ${cluster.logFile})`);
        }));
        const cpu = [procStat(node1.pid).cpuS - cpu0[0]!, procStat(node2.pid).cpuS - cpu0[1]!];
        // Drain before the next round: the nodes still deliver what queued up during the flood (every publish goes
        // through Redis, local ones too). One marker per node, sent behind its publishers' messages, must reach the
        // service; otherwise the next round's CONNECTs would wait behind the backlog.
        const markers = ports.map((_, i) => `drain-${Math.random().toString(36).slice(2)}-${i}`);
        const pending = new Set(markers);
        const drained = new Promise<void>((resolve) => {
          onA = (p) => {
            if (pending.delete(p.toString()) && pending.size === 0) resolve();
          };
        });
        markers.forEach((m, i) => clients[i]!.publish(topics.telemetry(clients[i]!.options.clientId as string), m, { qos: 0 }));
        // QoS 0 may be dropped on the way to a congested subscriber: the drain is bounded, and the round line says so
        let bound: NodeJS.Timeout | undefined;
        const wasDrained = await Promise.race([drained.then(() => true), new Promise<boolean>((r) => (bound = setTimeout(() => r(false), 15_000)))]);
        clearTimeout(bound);
        await endAll(clients);
        onA = () => {};
        return { perSecond: delivered / SECONDS, node1CpuS: cpu[0]!, node2CpuS: cpu[1]!, drained: wasDrained };
      }
      const one: number[] = [];
      const two: number[] = [];
      // round 0 warms both layouts up and is not counted; the figure is the median of the rounds after it
      for (let round = 0; round <= ROUNDS; round++) {
        const a = await throughput([node1.port]);
        const b = await throughput([node1.port, node2.port]);
        log(`throughput round ${round}${round === 0 ? ' (warm-up)' : ''}: 1 node ${a.perSecond.toFixed(0)} msg/s (cpu ${a.node1CpuS.toFixed(1)}s/${a.node2CpuS.toFixed(1)}s${a.drained ? '' : ', backlog not drained in 15 s'}), 2 nodes ${b.perSecond.toFixed(0)} msg/s (cpu ${b.node1CpuS.toFixed(1)}s/${b.node2CpuS.toFixed(1)}s${b.drained ? '' : ', backlog not drained in 15 s'})`);
        if (round === 0) continue;
        one.push(a.perSecond);
        two.push(b.perSecond);
      }
      const median = (xs: number[]) => {
        const sorted = [...xs].sort((x, y) => x - y);
        const mid = Math.floor(sorted.length / 2);
        return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
      };
      line('cluster_two_nodes_messages_per_second', median(two), 'msg/s', median(one), median(two) / median(one), {
        baselineOf: 'every publisher on node 1 of the same cluster', devices: DEVICES, seconds: SECONDS, rounds: ROUNDS, of: 'median of the rounds after a warm-up',
        perRound: { oneNode: one.map(Math.round), twoNodes: two.map(Math.round) }, listener: 'one service on node 1',
      });
    }
    await endAll([svcA]);
  }

  if (PHASES.has('baselines')) {
    // Same count of idle mTLS sessions on stock aedes and Mosquitto (bench:broker's harness, its test PKI).
    const pki = await createTestPki({ name: 'bench-cluster' });
    const shared = await newKeys();
    const certs: DeviceCert[] = [];
    for (let i = 0; i < CONNECTIONS; i++) certs.push({ ...(await pki.device(`base-${i}`, { keys: shared.keys })), keyPem: shared.keyPem });
    const dir = await writeBrokerMaterial(pki);
    const perConn: Record<string, number> = {};
    for (const name of ['stock-aedes', 'mosquitto'] as const) {
      const target = name === 'mosquitto'
        ? await startMosquitto({ port: await freePort(), caPem: pki.caChainPem, serverCertPem: pki.server.chainPem, serverKeyPem: pki.server.keyPem })
        : await startNodeBroker('stock-aedes', dir, db.url);
      try {
        const b = await gcAndRss(target);
        const clients = await idleLoad(target.port, certs, pki.caChainPem, cache);
        const a = await gcAndRss(target);
        perConn[name] = (a - b) / clients.length;
        log(`idle ${name}: ${clients.length} connected, rss ${b} → ${a} KiB`);
        await endAll(clients);
      } finally {
        await target.stop();
      }
    }
    await rm(dir, { recursive: true, force: true });
    const ours = enrolldPerConn;
    line('idle_rss_per_connection_stock_aedes', perConn['stock-aedes']!, 'KiB/conn', ours ?? null, ours ? perConn['stock-aedes']! / ours : null, { connections: CONNECTIONS, baselineOf: 'enrolld cluster node, same run (ratio > 1: the node uses less)' });
    line('idle_rss_per_connection_mosquitto', perConn.mosquitto!, 'KiB/conn', ours ?? null, ours ? perConn.mosquitto! / ours : null, { connections: CONNECTIONS, baselineOf: 'enrolld cluster node, same run (ratio > 1: the node uses less)' });
  }
  http.close();
  admin.close();
} finally {
  await cluster.dispose();
  await dropClusterKeys(cluster.prefix);
  await db.drop();
  if (process.env.BENCH_KEEP !== '1') await rm(memDir, { recursive: true, force: true });
}
process.exit(0);
