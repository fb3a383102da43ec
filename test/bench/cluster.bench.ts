// `npm run bench:cluster`: the broker cluster on Redis as it is deployed, each broker its own `enrolld broker` process:
// the local cluster form (`server/scripts/cluster.mjs`: 1 API + 2 brokers over Postgres and Redis), started through
// the simulator's ClusterProcess and driven from this process over the wire only. Devices and services are enrolled
// through the API. Figures on stdout, one JSON line each: {"metric","value","unit","baseline","ratio",…}; progress on
// stderr. Phases (BENCH_PHASES, default latency,throughput,memory,baselines; `flood` on request):
//  - latency: publish latency p50/p99, device on node 2 → service on node 1 (through Redis), against the same publishes
//    to a service on node 2 (same node);
//  - throughput: messages per second through 1 node against 2 nodes, in the same run, as sustained capacity rather than
//    overflow: a closed loop, end to end, where each of BENCH_PUBLISHERS devices keeps at most BENCH_WINDOW QoS 0
//    messages in flight and a message's flight ends when its subscriber receives it, so the offered load follows what the
//    cluster delivers. Two services subscribe, each to half the devices' telemetry topics. Layouts: `one` (every client
//    on node 1, the baseline), `local` (devices split over both nodes, each node's service receives its own node's
//    devices: node-local, yet through Redis, as mqemitter-redis routes every publish) and `cross` (each service receives
//    the other node's devices: every message crosses nodes), BENCH_LAYOUTS picks the 2-node ones. Interleaved rounds
//    (one warm-up, then BENCH_ROUNDS), medians: msg/s delivered and p50/p99 publish-to-arrival latency at that load,
//    ratio 2 nodes / 1 node, and both nodes' CPU ms per message (what clustering costs per message); with each node's,
//    this process's, Redis's and the whole machine's CPU seconds per wall second, and CPU ms per message, so a reader
//    sees what bounded the result (2 cores: this process and Redis share them with the nodes; a 1-node figure whose node
//    is under 0.9 CPU s per wall s was bounded by something else, and the bench says so on stderr);
//  - memory: idle memory per connection at BENCH_CONNECTIONS on node 1 (node 2 the same, or what this process's
//    open-file limit leaves: every client socket is a descriptor here): RSS growth of each broker process after a full
//    GC (test/bench/memory-hook.cjs, preloaded), split into V8 heap, external buffers and native memory (OpenSSL, libuv,
//    malloc), against stock aedes and Mosquitto at the same count (the harness of bench:broker, phase `baselines`);
//  - flood (off by default): the open-loop overload check. BENCH_DEVICES devices split over both nodes publish QoS 0
//    as fast as their sockets take it for BENCH_FLOOD_SECONDS to one service on node 1; messages offered, delivered
//    (during the flood and until an end marker per device arrives, at most 60 s after) and dropped; a fresh CONNECT to
//    each node once a second during the flood and while it drains, with its CONNACK code; each node's cluster-bus losses
//    and connect refusals by reason from its /metrics. An overloaded cluster must stay a cluster: every probe admitted,
//    no bus lost.
// Before every round the bench waits for each broker's /readyz (its BROKER_HTTP_PORT) to answer 200; a refused CONNECT
// stops it with one line: the CONNACK code and the node's refusals by reason and bus state from its /metrics.
// Env: BENCH_CONNECTIONS (per node, default 2000), BENCH_DEVICES (latency and flood publishers, 20), BENCH_PUBLISHERS
// (closed-loop publishers, BENCH_DEVICES), BENCH_WINDOW (messages in flight per publisher, 4), BENCH_LAYOUTS
// (local,cross), BENCH_SECONDS (measured seconds per throughput round, 5), BENCH_FLOOD_SECONDS (10), BENCH_SAMPLES
// (500), BENCH_ROUNDS (2 measured, after one warm-up), BENCH_HEAP_SNAPSHOT=1 (heap snapshots of node 1 before and
// after: the heap growth per connection by constructor), BENCH_KEEP=1 (keep the cluster log).
import { generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import nodeHttp from 'node:http';
import type tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
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
const PUBLISHERS = Number(process.env.BENCH_PUBLISHERS ?? DEVICES);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 4);
const LAYOUTS = (process.env.BENCH_LAYOUTS ?? 'local,cross').split(',').filter((l): l is 'local' | 'cross' => l === 'local' || l === 'cross');
const FLOOD_SECONDS = Number(process.env.BENCH_FLOOD_SECONDS ?? 10);
/** a closed-loop message not delivered in this time is counted lost and its slot in the window is freed */
const LOSS_MS = 3000;
if (!(PUBLISHERS >= 2 && Number.isInteger(PUBLISHERS)) || !(WINDOW >= 1 && Number.isInteger(WINDOW)) || !(FLOOD_SECONDS > 0)) {
  process.stderr.write(`bench:cluster: BENCH_PUBLISHERS must be an integer >= 2 (one per subscriber at least), BENCH_WINDOW an integer >= 1, BENCH_FLOOD_SECONDS > 0\n`);
  process.exit(2);
}
const HEAP_SNAPSHOT = process.env.BENCH_HEAP_SNAPSHOT === '1';
const HOOK = fileURLToPath(new URL('./memory-hook.cjs', import.meta.url));
const log = (m: string) => process.stderr.write(`${m}\n`);

const db = await createTestDatabase();
// each broker's /healthz, /readyz and /metrics (BROKER_HTTP_PORT), read before every round and when a CONNECT is refused
const httpPorts = [await freePort()];
while (httpPorts.length < 2) {
  const p = await freePort();
  if (!httpPorts.includes(p)) httpPorts.push(p);
}
const memDir = await mkdtemp(path.join(tmpdir(), 'enrolld-bench-mem-'));
const cluster = new ClusterProcess({
  brokers: 2, databaseUrl: db.url, redisUrl: TEST_REDIS_URL, logFile: path.join(memDir, 'cluster.log'),
  // the per-connection publish limit is lifted: the throughput phase measures the node, not the limit, and the flood
  // phase floods on purpose
  env: {
    NODE_OPTIONS: `--require ${HOOK}`, BENCH_MEMORY_DIR: memDir, ...(HEAP_SNAPSHOT ? { BENCH_HEAP_SNAPSHOT: '1' } : {}),
    BROKER_PUBLISH_RATE: '1000000', BROKER_PUBLISH_BURST: '1000000', CLUSTER_BROKER_HTTP_PORTS: httpPorts.join(','),
  },
});
const cache = new Map<string, tls.SecureContext>();
/** the cluster node's idle KiB per connection, the baseline of the stock-aedes and Mosquitto lines */
let enrolldPerConn: number | undefined;

function keyPair(): Promise<{ publicKey: KeyObject; privateKey: KeyObject }> {
  return new Promise((resolve, reject) => generateKeyPair('ec', { namedCurve: 'P-256' }, (e, publicKey, privateKey) => (e ? reject(e) : resolve({ publicKey, privateKey }))));
}

/** A broker of the cluster: its MQTT port, and its plain-HTTP port for /readyz and /metrics. */
interface Node {
  name: string;
  pid: number;
  port: number;
  httpPort: number;
}

/** A failure the bench reports in one line (a refused CONNECT, a node that stays unready), without a stack. */
class BenchError extends Error {}

function connectOnce(port: number, who: ClientIdentity, ca: string, timeoutMs = 30_000): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect({
      protocol: 'mqtts', host: '127.0.0.1', port, servername: 'localhost', secureContext: contextFor(who, ca, cache), noDelay: true,
      clientId: who.deviceId, protocolVersion: 4, clean: true, keepalive: 600, reconnectPeriod: 0, connectTimeout: timeoutMs,
    } as mqtt.IClientOptions);
    c.once('connect', () => {
      c.on('error', () => {}); // a later failure shows up as a close, which the phases watch
      resolve(c);
    });
    c.once('error', (e) => (c.end(true), reject(e)));
  });
}

function httpGet(port: number, route: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = nodeHttp.get({ host: '127.0.0.1', port, path: route, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
  });
}

/** Every sample of the node's /metrics, keyed by name and labels as written (`name{label="v"}`). */
async function scrape(node: Node): Promise<Map<string, number>> {
  const { status, body } = await httpGet(node.httpPort, '/metrics');
  if (status !== 200) throw new BenchError(`${node.name}: /metrics answered ${status}: ${body.slice(0, 200)}`);
  const out = new Map<string, number>();
  for (const l of body.split('\n')) {
    if (!l || l.startsWith('#')) continue;
    const i = l.lastIndexOf(' ');
    out.set(l.slice(0, i), Number(l.slice(i + 1)));
  }
  return out;
}

/** The samples of every family whose name starts with `prefix`, optionally as the growth since `before` (counters). */
function series(m: Map<string, number>, prefix: string, before?: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of m) if (k.startsWith(prefix)) out[k.slice(prefix.length) || '_'] = v - (before?.get(k) ?? 0);
  return out;
}

/** Waits until every node's /readyz answers 200 (a node refuses CONNECTs while it is not ready); seconds waited. */
async function waitReady(nodes: readonly Node[], timeoutMs = 120_000): Promise<number> {
  const t = performance.now();
  for (const node of nodes) {
    for (;;) {
      const r = await httpGet(node.httpPort, '/readyz');
      if (r.status === 200) break;
      if (performance.now() - t > timeoutMs) throw new BenchError(`${node.name} was not ready in ${timeoutMs / 1000} s: /readyz ${r.status} ${r.body} (broker log: ${cluster.logFile})`);
      await sleep(250); // /readyz has no event to wait on
    }
  }
  return (performance.now() - t) / 1000;
}

/** A refused CONNECT as one line: the CONNACK code and what the node's /metrics say about why. */
async function refusal(node: Node, who: string, e: unknown): Promise<BenchError> {
  const code = (e as { code?: unknown }).code;
  let why: string;
  try {
    const m = await scrape(node);
    why = `refusals on ${node.name} by reason ${JSON.stringify(series(m, 'enrolld_broker_connect_refusals_total'))}, cluster bus up ${m.get('enrolld_broker_cluster_bus_up')}, bus losses ${m.get('enrolld_broker_cluster_bus_losses_total')}`;
  } catch (x) {
    why = `its /metrics unreadable: ${(x as Error).message}`;
  }
  return new BenchError(`${node.name} refused the CONNECT of ${who}: ${typeof code === 'number' ? `CONNACK ${code}` : 'no CONNACK'} (${(e as Error).message}); ${why} (broker log: ${cluster.logFile})`);
}

async function clientFor(node: Node, who: ClientIdentity, ca: string): Promise<MqttClient> {
  try {
    return await connectOnce(node.port, who, ca);
  } catch (e) {
    throw await refusal(node, who.deviceId, e);
  }
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
  // cluster.mjs starts broker-N on the N-th MQTT port and the N-th CLUSTER_BROKER_HTTP_PORTS entry
  const nodes: Node[] = cluster.brokers.map((b, i) => ({ name: `node ${i + 1}`, pid: b.pid, port: b.port, httpPort: httpPorts[i]! }));
  const [node1, node2] = nodes as [Node, Node];
  await waitReady(nodes);
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

  /** A service identity (POST /v1/admin/services): reads every device's telemetry (the built-in `service` profile). */
  async function serviceIdentity(name: string): Promise<ClientIdentity> {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const issued = issuedFromRest(await admin.createService(name, buildCsr(name, publicKey, privateKey, 'service').pem), privateKey);
    return { deviceId: name, keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), chainPem: clientCertChain(issued, true) };
  }

  const subscribe = (client: MqttClient, filters: string[]) =>
    new Promise<void>((resolve, reject) => client.subscribe(filters, { qos: 0 }, (e, granted) => {
      const refused = granted?.filter((g) => g.qos === 0x80) ?? [];
      if (e || refused.length > 0) reject(e ?? new BenchError(`SUBACK 0x80 for ${refused.map((g) => g.topic).join(', ')}`));
      else resolve();
    }));

  /** A new service subscribed to every device's telemetry on one node. */
  async function service(name: string, node: Node, onTelemetry: (payload: Buffer) => void): Promise<MqttClient> {
    const client = await clientFor(node, await serviceIdentity(name), ca);
    client.on('message', (_topic, payload) => onTelemetry(payload));
    await subscribe(client, [topics.allTelemetry]);
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

  if (PHASES.has('latency') || PHASES.has('throughput') || PHASES.has('flood')) {
    // the throughput and flood publishers first, then two probes of the flood (one per node), then the latency device
    const publishers = await enroll(Math.max(DEVICES, PUBLISHERS) + 3, `bench-pub-${suffix}-`);
    const [probe1, probe2, latencyDevice] = publishers.slice(-3) as [ClientIdentity, ClientIdentity, ClientIdentity];
    // CPU seconds of the shared Redis too, when its process is on this machine (other users of it count as well)
    const redisPid = await (async () => {
      const r = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
      try {
        const pid = Number(/process_id:(\d+)/.exec(await r.info('server'))?.[1]);
        procStat(pid);
        return pid;
      } catch {
        return undefined;
      } finally {
        r.disconnect();
      }
    })();
    /** busy CPU seconds of the whole machine (every core, every process: other load on it shows here) */
    const machineCpuS = () => {
      const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
      return (f.reduce((a, b) => a + b, 0) - f[3]! - f[4]!) / 100; // all but idle and iowait, in clock ticks
    };
    const cpuNow = () => {
      const self = process.cpuUsage();
      return { node1: procStat(node1.pid).cpuS, node2: procStat(node2.pid).cpuS, bench: (self.user + self.system) / 1e6, redis: redisPid ? procStat(redisPid).cpuS : NaN, machine: machineCpuS() };
    };
    type Cpu = ReturnType<typeof cpuNow>;
    const cores = availableParallelism();
    /** CPU seconds per wall second of each process between two readings */
    const cpuRate = (a: Cpu, b: Cpu, wallS: number): Cpu => ({ node1: (b.node1 - a.node1) / wallS, node2: (b.node2 - a.node2) / wallS, bench: (b.bench - a.bench) / wallS, redis: (b.redis - a.redis) / wallS, machine: (b.machine - a.machine) / wallS });
    const fmtCpu = (c: Cpu) => `node 1 ${c.node1.toFixed(2)}, node 2 ${c.node2.toFixed(2)}, bench ${c.bench.toFixed(2)}, redis ${Number.isNaN(c.redis) ? 'n/a' : c.redis.toFixed(2)}, machine ${c.machine.toFixed(2)} of ${cores}`;
    const roundCpu = (c: Cpu) => ({ node1: +c.node1.toFixed(2), node2: +c.node2.toFixed(2), bench: +c.bench.toFixed(2), redis: Number.isNaN(c.redis) ? null : +c.redis.toFixed(2), machine: +c.machine.toFixed(2), cores });
    const median = (xs: number[]) => {
      const sorted = [...xs].sort((x, y) => x - y);
      const mid = Math.floor(sorted.length / 2);
      return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    };
    /** rejects when `ms` pass first */
    const within = <T>(p: Promise<T>, ms: number, what: string) => {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new BenchError(`${what} within ${ms / 1000} s (broker log: ${cluster.logFile})`)), ms)))]).finally(() => clearTimeout(timer));
    };

    if (PHASES.has('latency')) {
      // One device on node 2; every publish timed to its arrival at the service on node 1 (across) and on node 2 (same).
      let onA: (p: Buffer) => void = () => {};
      let onB: (p: Buffer) => void = () => {};
      const svcA = await service(`bench-a-${suffix}`, node1, (p) => onA(p));
      const svcB = await service(`bench-b-${suffix}`, node2, (p) => onB(p));
      const device = await clientFor(node2, latencyDevice, ca);
      const topic = topics.telemetry(latencyDevice.deviceId);
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
      await endAll([device, svcA, svcB]);
    }

    if (PHASES.has('throughput')) {
      // Closed loop, end to end: each publisher keeps at most WINDOW QoS 0 messages in flight, a message's flight ending
      // when its subscriber receives it, so the offered load follows what the cluster delivers and nothing queues up in
      // Redis or in a node. Two subscribers (services) in every layout, each subscribed to the telemetry topics of half
      // the publishers, so the client side is the same work everywhere and only the node placement changes.
      type Layout = 'one' | 'local' | 'cross';
      const describe: Record<Layout, string> = {
        one: 'every publisher and both subscribers on node 1',
        local: 'publishers split over both nodes, each node\'s subscriber receives the publishers on its own node (still through Redis)',
        cross: 'publishers split over both nodes, each node\'s subscriber receives the publishers on the other node (every message crosses nodes)',
      };
      const pubs = publishers.slice(0, PUBLISHERS);
      const even = pubs.map((_, i) => i).filter((i) => i % 2 === 0);
      const odd = pubs.map((_, i) => i).filter((i) => i % 2 === 1);
      const plan = (layout: Layout): { pubNode: (i: number) => Node; subs: Array<{ node: Node; pubs: number[] }> } => {
        if (layout === 'one') return { pubNode: () => node1, subs: [{ node: node1, pubs: even }, { node: node1, pubs: odd }] };
        const pubNode = (i: number) => (i % 2 === 0 ? node1 : node2);
        return { pubNode, subs: layout === 'local' ? [{ node: node1, pubs: even }, { node: node2, pubs: odd }] : [{ node: node1, pubs: odd }, { node: node2, pubs: even }] };
      };
      const services = [await serviceIdentity(`bench-t1-${suffix}`), await serviceIdentity(`bench-t2-${suffix}`)];

      interface Round { perSecond: number; p50: number; p99: number; cpu: Cpu; lost: number; busLosses: number[] }
      async function closedLoop(layout: Layout): Promise<Round> {
        await waitReady(nodes);
        const before = await Promise.all(nodes.map(scrape));
        const { pubNode, subs } = plan(layout);
        const subClients = await Promise.all(subs.map(async (sub, k) => {
          const c = await clientFor(sub.node, services[k]!, ca);
          await subscribe(c, sub.pubs.map((i) => topics.telemetry(pubs[i]!.deviceId)));
          return c;
        }));
        const pubClients = await Promise.all(pubs.map((d, i) => clientFor(pubNode(i), d, ca)));
        const all = [...subClients, ...pubClients];
        const state = pubs.map((d) => ({ topic: topics.telemetry(d.deviceId), seq: 0, inFlight: new Map<number, number>(), delivered: 0 }));
        let running = true;
        let measuring = false;
        let delivered = 0;
        let lost = 0;
        const latencies: number[] = [];
        const broken = new Promise<never>((_, reject) => {
          for (const c of all) c.once('close', () => running && reject(new BenchError(`${c.options.clientId as string} was disconnected during the closed loop (${layout}); broker log: ${cluster.logFile}`)));
        });
        broken.catch(() => {});
        let unprimed = pubs.length;
        let primed = () => {};
        const allPrimed = new Promise<void>((resolve) => (primed = resolve));
        let emptied = () => {};
        const drained = new Promise<void>((resolve) => (emptied = resolve));
        const checkEmpty = () => {
          if (!running && state.every((p) => p.inFlight.size === 0)) emptied();
        };
        const send = (i: number) => {
          const p = state[i]!;
          const seq = ++p.seq;
          p.inFlight.set(seq, performance.now());
          pubClients[i]!.publish(p.topic, `${i} ${seq}`, { qos: 0 });
        };
        const onMessage = (payload: Buffer) => {
          const text = payload.toString();
          const space = text.indexOf(' ');
          const i = Number(text.slice(0, space));
          const p = state[i];
          const sent = p?.inFlight.get(Number(text.slice(space + 1)));
          if (p === undefined || sent === undefined) return; // counted lost already
          p.inFlight.delete(Number(text.slice(space + 1)));
          if (p.delivered++ === 0 && --unprimed === 0) primed();
          if (measuring) {
            delivered++;
            latencies.push(performance.now() - sent);
          }
          if (running) send(i);
          else checkEmpty();
        };
        for (const c of subClients) c.on('message', (_topic, payload) => onMessage(payload));
        // QoS 0 may be dropped (MQTT-4.3.1): a message still in flight after LOSS_MS is counted lost and its slot reused
        const sweep = setInterval(() => {
          const now = performance.now();
          state.forEach((p, i) => {
            for (const [seq, sent] of p.inFlight) {
              if (now - sent < LOSS_MS) continue;
              p.inFlight.delete(seq);
              if (measuring) lost++;
              if (running) send(i);
            }
          });
          checkEmpty();
        }, 250);
        try {
          for (let i = 0; i < pubs.length; i++) for (let w = 0; w < WINDOW; w++) send(i);
          // every publisher's path works (a subscription reaches Redis a moment after its SUBACK), then 1 s to settle
          await Promise.race([within(allPrimed, 30_000, `not every publisher had a message delivered (${layout})`), broken]);
          await Promise.race([sleep(1000), broken]);
          const cpu0 = cpuNow();
          const t0 = performance.now();
          measuring = true;
          await Promise.race([sleep(SECONDS * 1000), broken]);
          measuring = false;
          const wallS = (performance.now() - t0) / 1000;
          const cpu = cpuRate(cpu0, cpuNow(), wallS);
          running = false;
          checkEmpty();
          // at most WINDOW per publisher left: each arrives or is counted lost within LOSS_MS
          await Promise.race([within(drained, LOSS_MS + 5000, `the messages in flight were not delivered (${layout})`), broken]);
          latencies.sort((x, y) => x - y);
          const after = await Promise.all(nodes.map(scrape));
          const busLosses = nodes.map((_, k) => (after[k]!.get('enrolld_broker_cluster_bus_losses_total') ?? 0) - (before[k]!.get('enrolld_broker_cluster_bus_losses_total') ?? 0));
          return { perSecond: delivered / wallS, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), cpu, lost, busLosses };
        } finally {
          running = false;
          clearInterval(sweep);
          await endAll(all);
        }
      }

      const layouts: Layout[] = ['one', ...LAYOUTS];
      const results = new Map<Layout, Round[]>(layouts.map((l) => [l, []]));
      log(`throughput: ${PUBLISHERS} publishers, window ${WINDOW} each, ${SECONDS} s per layout; layouts: ${layouts.map((l) => `${l} (${describe[l]})`).join('; ')}`);
      // round 0 warms every layout up and is not counted; the figures are the medians of the rounds after it
      for (let round = 0; round <= ROUNDS; round++) {
        for (const layout of layouts) {
          log(`throughput round ${round}/${ROUNDS}${round === 0 ? ' (warm-up)' : ''}, ${layout}…`);
          const r = await closedLoop(layout);
          log(`  ${layout}: ${r.perSecond.toFixed(0)} msg/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms; CPU s per wall s: ${fmtCpu(r.cpu)}; node CPU ms per message ${((r.cpu.node1 + r.cpu.node2) / r.perSecond * 1000).toFixed(3)}${r.lost ? `; ${r.lost} lost` : ''}${r.busLosses.some((n) => n > 0) ? `; bus losses ${r.busLosses.join('/')}` : ''}`);
          if (layout === 'one' && r.cpu.node1 < 0.9) log(`  node 1 is not saturated (${r.cpu.node1.toFixed(2)} CPU s per wall s): the bound is elsewhere (the machine's ${r.cpu.machine.toFixed(2)} of ${cores} cores busy, this process, Redis); raise BENCH_WINDOW or BENCH_PUBLISHERS if the machine is idle`);
          if (round > 0) results.get(layout)!.push(r);
        }
      }
      const summary = (rs: Round[]) => ({
        perSecond: median(rs.map((r) => r.perSecond)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)),
        cpu: roundCpu({ node1: median(rs.map((r) => r.cpu.node1)), node2: median(rs.map((r) => r.cpu.node2)), bench: median(rs.map((r) => r.cpu.bench)), redis: median(rs.map((r) => r.cpu.redis)), machine: median(rs.map((r) => r.cpu.machine)) }),
        // CPU per delivered message: what the load on the machine does not change (capacity of a node ≈ 1 core / this)
        cpuMsPerMessage: { node1: +median(rs.map((r) => (r.cpu.node1 / r.perSecond) * 1000)).toFixed(4), node2: +median(rs.map((r) => (r.cpu.node2 / r.perSecond) * 1000)).toFixed(4), bench: +median(rs.map((r) => (r.cpu.bench / r.perSecond) * 1000)).toFixed(4) },
        lost: rs.reduce((n, r) => n + r.lost, 0), busLosses: rs.reduce((n, r) => n + r.busLosses.reduce((a, b) => a + b, 0), 0),
      });
      const one = summary(results.get('one')!);
      const common = { publishers: PUBLISHERS, window: WINDOW, seconds: SECONDS, rounds: ROUNDS, of: 'median of the rounds after a warm-up', subscribers: 2, qos: 0, cpuPerWallSecondOf: 'each broker process, this bench process (every client), the Redis server' };
      for (const layout of LAYOUTS) {
        const two = summary(results.get(layout)!);
        line(`cluster_two_nodes_${layout}_messages_per_second`, two.perSecond, 'msg/s', one.perSecond, two.perSecond / one.perSecond, {
          ...common, layout: describe[layout], baselineOf: `the same closed loop with ${describe.one}, same run`,
          perRound: { oneNode: results.get('one')!.map((r) => Math.round(r.perSecond)), twoNodes: results.get(layout)!.map((r) => Math.round(r.perSecond)) },
          cpuPerWallSecond: { oneNode: one.cpu, twoNodes: two.cpu }, cpuMsPerMessage: { oneNode: one.cpuMsPerMessage, twoNodes: two.cpuMsPerMessage }, lost: { oneNode: one.lost, twoNodes: two.lost }, busLosses: { oneNode: one.busLosses, twoNodes: two.busLosses },
        });
        // Both nodes' CPU per delivered message: what clustering costs per message, which the load on the machine moves
        // far less than msg/s (on a shared machine the nodes get what CPU the others leave them).
        const nodeCpu = (rs: Round[]) => median(rs.map((r) => ((r.cpu.node1 + r.cpu.node2) / r.perSecond) * 1000));
        const [cpuTwo, cpuOne] = [nodeCpu(results.get(layout)!), nodeCpu(results.get('one')!)];
        line(`cluster_two_nodes_${layout}_node_cpu_per_message`, cpuTwo, 'ms', cpuOne, cpuTwo / cpuOne, {
          ...common, layout: describe[layout], baselineOf: `the same closed loop with ${describe.one}, same run`, ratioOf: '2 nodes / 1 node',
          of: 'CPU ms of both broker processes together per message delivered, median of the rounds after a warm-up',
        });
        for (const q of ['p50', 'p99'] as const) {
          line(`cluster_two_nodes_${layout}_latency_${q}`, two[q], 'ms', one[q], two[q] / one[q], {
            ...common, layout: describe[layout], baselineOf: `the same closed loop with ${describe.one}, same run`, ratioOf: '2 nodes / 1 node',
            atLoad: { oneNode: Math.round(one.perSecond), twoNodes: Math.round(two.perSecond), unit: 'msg/s' }, latencyOf: 'publish to arrival at the subscriber, end to end',
          });
        }
      }
    }

    if (PHASES.has('flood')) {
      // The open-loop flood: QoS 0 as fast as the sockets take it for BENCH_FLOOD_SECONDS, publishers split over both
      // nodes, one service on node 1 subscribed to all telemetry. What it checks is that an overloaded cluster stays a
      // cluster: a fresh CONNECT to each node once a second during the flood is admitted, and no node loses its bus.
      await waitReady(nodes);
      const before = await Promise.all(nodes.map(scrape));
      let delivered = 0;
      const markers = new Set<string>();
      let markersIn = () => {};
      const allMarkersIn = new Promise<void>((resolve) => (markersIn = resolve));
      const svc = await service(`bench-flood-${suffix}`, node1, (p) => {
        if (p[0] === 0x66) delivered++; // 'f': a flood message
        else if (markers.delete(p.toString()) && markers.size === 0) markersIn();
      });
      const clients = await Promise.all(publishers.slice(0, DEVICES).map((d, i) => clientFor(nodes[i % 2]!, d, ca)));
      let offered = 0;
      let disconnected = 0;
      interface Probe { at: number; code: number | string; ms: number }
      /** A fresh CONNECT: its CONNACK code (0 admitted), or what happened instead, and how long it took. */
      const probe = async (node: Node, who: ClientIdentity, t0: number): Promise<Probe> => {
        const t = performance.now();
        const at = +((t - t0) / 1000).toFixed(1);
        try {
          await endAll([await connectOnce(node.port, who, ca, 5000)]);
          return { at, code: 0, ms: Math.round(performance.now() - t) };
        } catch (e) {
          const code = (e as { code?: unknown }).code;
          return { at, code: typeof code === 'number' ? code : (e as Error).message, ms: Math.round(performance.now() - t) };
        }
      };
      log(`flood: ${DEVICES} publishers over both nodes for ${FLOOD_SECONDS} s, a fresh CONNECT to each node every second during it and while it drains…`);
      const cpu0 = cpuNow();
      const t0 = performance.now();
      const stopAt = t0 + FLOOD_SECONDS * 1000;
      let probing = true;
      // per node, one probe at a time, at most one a second (its own client id, so no probe takes over another)
      const probes = Promise.all([[node1, probe1], [node2, probe2]].map(async ([node, who]) => {
        const out: Probe[] = [];
        while (probing) {
          const tick = sleep(1000);
          out.push(await probe(node as Node, who as ClientIdentity, t0));
          await tick;
        }
        return out;
      }));
      await Promise.all(clients.map(async (client) => {
        const topic = topics.telemetry(client.options.clientId as string);
        let closed = false;
        const gone = new Promise<void>((resolve) => client.once('close', () => ((closed = true), resolve())));
        while (performance.now() < stopAt && !closed) {
          // bounded by the socket: wait for the write callback every 50 messages (or the close of a dropped client)
          for (let i = 0; i < 49; i++) client.publish(topic, 'f', { qos: 0 });
          await Promise.race([gone, new Promise<void>((resolve) => client.publish(topic, 'f', { qos: 0 }, () => resolve()))]);
          offered += 50;
        }
        if (closed) disconnected++;
      }));
      const floodS = (performance.now() - t0) / 1000;
      const cpu = cpuRate(cpu0, cpuNow(), floodS);
      const deliveredInFlood = delivered;
      // The nodes work off what queued up (in socket buffers, in the nodes, in Redis): one marker per publisher, sent
      // behind its flood, must reach the service. QoS 0 may drop a marker too, so the wait is bounded.
      const td = performance.now();
      clients.forEach((c, i) => {
        markers.add(`m${i}`);
        c.publish(topics.telemetry(c.options.clientId as string), `m${i}`, { qos: 0 });
      });
      let bound: NodeJS.Timeout | undefined;
      const drained = await Promise.race([allMarkersIn.then(() => true), new Promise<boolean>((r) => (bound = setTimeout(() => r(false), 60_000)))]);
      clearTimeout(bound);
      const drainS = (performance.now() - td) / 1000;
      probing = false;
      const codes = await probes;
      await endAll([...clients, svc]);
      log(`flood: ${offered} offered, ${delivered} delivered (${deliveredInFlood} during the flood, the rest in ${drainS.toFixed(1)} s after it${drained ? '' : `; ${markers.size} of ${clients.length} end markers missing after 60 s`}); CPU s per wall s during the flood: ${fmtCpu(cpu)}; waiting for /readyz…`);
      const readyAgainS = await waitReady(nodes, 180_000);
      const after = await Promise.all(nodes.map(scrape));
      const perNode = <T>(f: (k: number) => T) => Object.fromEntries(nodes.map((n, k) => [n.name.replace(' ', ''), f(k)]));
      const bus = perNode((k) => ({
        lost: Object.values(series(after[k]!, 'enrolld_broker_cluster_bus_losses_total', before[k]!)).reduce((a, b) => a + b, 0),
        // the growth of every cluster-bus counter the broker exports, with its labels (per connection or channel, when it has them)
        counters: Object.fromEntries(Object.entries(series(after[k]!, 'enrolld_broker_cluster_bus', before[k]!)).filter(([name]) => /_total(\{|$)/.test(name))),
      }));
      const refusals = perNode((k) => series(after[k]!, 'enrolld_broker_connect_refusals_total', before[k]!));
      line('cluster_flood_messages_delivered', delivered, 'msg', offered, delivered / offered, {
        baselineOf: 'messages offered in the same flood (handed to the client library)', offered, delivered, dropped: offered - delivered, deliveredDuringFlood: deliveredInFlood,
        drainSeconds: +drainS.toFixed(1), drained: drained ? true : `${markers.size} of ${clients.length} end markers missing after 60 s`,
        offeredPerSecond: Math.round(offered / floodS), seconds: FLOOD_SECONDS, devices: DEVICES, layout: 'publishers split over both nodes, one service on node 1 subscribed to all telemetry', qos: 0,
        publishersDisconnected: disconnected, busLosses: bus, connectRefusals: refusals, readyAgainAfterSeconds: +readyAgainS.toFixed(1), cpuPerWallSecond: roundCpu(cpu),
      });
      for (const [label, during] of [['during the flood', (p: Probe) => p.at < floodS], ['while it drained', (p: Probe) => p.at >= floodS]] as const) {
        const tried = codes.flat().filter(during);
        const admitted = tried.filter((p) => p.code === 0).length;
        line(`cluster_flood_fresh_connects_admitted_${label === 'during the flood' ? 'during' : 'after'}`, admitted, 'connects', tried.length, tried.length ? admitted / tried.length : null, {
          baselineOf: `fresh CONNECTs tried ${label} (one at a time per node, at most one a second, 5 s CONNACK timeout)`,
          probes: perNode((k) => {
            const mine = codes[k]!.filter(during);
            const ok = mine.filter((p) => p.code === 0);
            return { tried: mine.length, admitted: ok.length, slowestAdmittedMs: ok.length ? Math.max(...ok.map((p) => p.ms)) : null, notAdmitted: mine.filter((p) => p.code !== 0) };
          }),
          expect: 'every one admitted (code 0); 3 = server unavailable (a node without its bus)',
        });
      }
    }
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
} catch (e) {
  // a refused CONNECT or a node that stays unready ends the run with one line; anything else with its stack
  log(`bench:cluster stopped: ${e instanceof BenchError ? e.message : e instanceof Error ? e.stack : String(e)}`);
  process.exitCode = 1;
} finally {
  await cluster.dispose();
  await dropClusterKeys(cluster.prefix);
  await db.drop();
  // the cluster log stays after a failure: the error names it
  if (process.env.BENCH_KEEP !== '1' && !process.exitCode) await rm(memDir, { recursive: true, force: true });
}
process.exit(process.exitCode ?? 0);
