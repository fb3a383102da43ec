// `npm run bench:flood`: what one flooding device does to everyone else, and what the per-identity limits change.
// Phases (BENCH_PHASES, default rtt,memory), each run twice in the same run: with the limits lifted ("unlimited",
// the broker as it was) and as shipped ("limited"). Server (`enrolld up`), flooding device and this measuring process
// are three processes.
//  - rtt: another device's MQTT round trip (QoS 0 publish to its own subscribed topic, 50 per second) and /healthz
//    latency, idle and while one device floods QoS 0 for FLOOD_SECONDS.
//  - memory: broker RSS and heap after oversize publishes, retained messages and subscriptions from one device, after
//    it left, and after its revocation purged everything; three flood/purge cycles, each figure after a full GC. The
//    server inherits the environment, so allocator experiments run as e.g. `MALLOC_MMAP_THRESHOLD_=131072 npm run
//    bench:flood`.
// One JSON line per figure: {"metric","phase","value","unit","baseline","ratio"}; the baseline is the unlimited run of the
// same figure (ratio = baseline / value: > 1 means the limits made it better).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { routes } from '@enrolld/protocol';
import { httpsRequest } from '../support/http.js';
import { percentile } from '../support/broker-harness.js';
import { rawConnect, type RawMqtt } from '../support/raw-mqtt.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PHASES = new Set((process.env.BENCH_PHASES ?? 'rtt,memory').split(','));
const FLOOD_SECONDS = Number(process.env.FLOOD_SECONDS ?? 10);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 3);
const MEMORY_MIB = Number(process.env.BENCH_MEMORY_MIB ?? 64);
const SUBSCRIPTIONS = Number(process.env.BENCH_SUBSCRIPTIONS ?? 20_000);
/** One round trip per this many ms (50/s): under the shipped publish rate, so the measuring device is never throttled. */
const RTT_INTERVAL_MS = Number(process.env.BENCH_RTT_INTERVAL_MS ?? 20);

const UNLIMITED = {
  BROKER_MAX_PACKET_SIZE: '256MiB',
  BROKER_MAX_RETAINED: '1000000',
  BROKER_MAX_RETAINED_BYTES: '4096MiB',
  BROKER_MAX_SUBSCRIPTIONS: '10000000',
  BROKER_PUBLISH_RATE: '1000000000',
  BROKER_PUBLISH_BURST: '1000000000',
  BROKER_MAX_INFLIGHT: '65535',
  BROKER_MAX_OUTBOUND_INFLIGHT: '65535',
  BROKER_MAX_QUEUED_MESSAGES: '1000000000',
  BROKER_CONNECT_RATE: '1000000000',
  BROKER_CONNECT_BURST: '1000000000',
};

interface Device {
  deviceId: string;
  keyPem: string;
  chainPem: string;
}
interface Ready {
  apiUrl: string;
  mqttsPort: number;
  rootPem: string;
  adminToken: string;
  devices: Device[];
}
interface Memory {
  rssMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  arrayBuffersMiB: number;
}

const figures = new Map<string, number>();
function line(metric: string, phase: string, value: number, unit: string): void {
  const baseline = phase === 'limited' ? figures.get(metric) : undefined;
  if (phase === 'unlimited') figures.set(metric, value);
  const round = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? null : +x.toFixed(3));
  process.stdout.write(`${JSON.stringify({ metric, phase, value: round(value), unit, baseline: round(baseline), ratio: baseline !== undefined ? round(baseline / value) : null })}\n`);
}

interface Server {
  ready: Ready;
  /** CPU seconds the server process has used so far (user + system, /proc). */
  cpuSeconds(): number;
  memory(): Promise<Memory>;
  stop(): Promise<void>;
}

function startServer(env: Record<string, string>, devices: number): Promise<Server> {
  const child: ChildProcess = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(ROOT, 'test/bench/flood-server.ts')], {
    cwd: ROOT,
    env: { ...process.env, ...env, BENCH_DEVICES: String(devices) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const waiting: Array<(value: Record<string, unknown>) => void> = [];
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const text = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (text.startsWith('{')) waiting.shift()?.(JSON.parse(text) as Record<string, unknown>);
    }
  });
  const nextLine = () => new Promise<Record<string, unknown>>((resolve) => waiting.push(resolve));
  return nextLine().then((ready) => ({
    ready: ready as unknown as Ready,
    cpuSeconds() {
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100;
    },
    async memory() {
      const answer = nextLine();
      child.kill('SIGUSR2');
      return (await answer).memory as Memory;
    },
    stop: () => new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  }));
}

const connectAs = (ready: Ready, device: Device) => rawConnect(ready.mqttsPort, { caChainPem: ready.rootPem }, device);

/** Round trips of one device through the broker, one per RTT_INTERVAL_MS, until `until` says stop. */
async function roundTrips(client: RawMqtt, deviceId: string, until: () => boolean): Promise<number[]> {
  const topic = `devices/${deviceId}/rtt`;
  const samples: number[] = [];
  for (let seq = 0; !until(); seq++) {
    const started = performance.now();
    client.send({ cmd: 'publish', topic, payload: Buffer.from(String(seq)), qos: 0, retain: false, dup: false });
    for (;;) {
      const packet = await client.next('publish');
      if (packet.cmd === 'publish' && packet.payload.toString() === String(seq)) break;
    }
    const took = performance.now() - started;
    samples.push(took);
    if (took < RTT_INTERVAL_MS) await new Promise((resolve) => setTimeout(resolve, RTT_INTERVAL_MS - took));
  }
  return samples;
}

async function healthLatencies(ready: Ready, until: () => boolean): Promise<number[]> {
  const samples: number[] = [];
  while (!until()) {
    const started = performance.now();
    const res = await httpsRequest(ready.apiUrl + routes.healthz, ready.rootPem);
    if (res.status !== 200) throw new Error(`/healthz answered ${res.status}`);
    samples.push(performance.now() - started);
  }
  return samples;
}

function flood(ready: Ready, device: Device): Promise<{ written: number; reconnects: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/bench/flood-publisher.ts')], {
    cwd: ROOT,
    env: { ...process.env, FLOOD_SECONDS: String(FLOOD_SECONDS) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  child.stdin!.end(JSON.stringify({ port: ready.mqttsPort, rootPem: ready.rootPem, device }));
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { written: number; reconnects: number }) : reject(new Error(`flooder exited ${code}`)))));
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

async function rttPhase(phase: 'unlimited' | 'limited', env: Record<string, string>): Promise<void> {
  const server = await startServer(env, 2);
  const { ready } = server;
  const [flooder, other] = ready.devices as [Device, Device];
  try {
    const client = await connectAs(ready, other);
    client.send({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `devices/${other.deviceId}/rtt`, qos: 0 }] });
    await client.next('suback');
    await roundTrips(client, other.deviceId, ((n) => () => n-- <= 0)(50));
    let end = Date.now() + IDLE_SECONDS * 1000;
    let cpu = server.cpuSeconds();
    const [idleRtt, idleHealth] = await Promise.all([roundTrips(client, other.deviceId, () => Date.now() > end), healthLatencies(ready, () => Date.now() > end)]);
    line('server_cpu_idle_per_second', phase, (server.cpuSeconds() - cpu) / IDLE_SECONDS, 'cpu-s/s');
    end = Date.now() + FLOOD_SECONDS * 1000;
    cpu = server.cpuSeconds();
    const [floodRtt, floodHealth, flooded] = await Promise.all([
      roundTrips(client, other.deviceId, () => Date.now() > end),
      healthLatencies(ready, () => Date.now() > end),
      flood(ready, flooder),
    ]);
    line('server_cpu_flood_per_second', phase, (server.cpuSeconds() - cpu) / FLOOD_SECONDS, 'cpu-s/s');
    client.end();
    for (const [name, samples] of [['device_rtt_idle', idleRtt], ['device_rtt_flood', floodRtt], ['healthz_idle', idleHealth], ['healthz_flood', floodHealth]] as const) {
      const s = sorted(samples);
      line(`${name}_p50_ms`, phase, percentile(s, 0.5), 'ms');
      line(`${name}_p95_ms`, phase, percentile(s, 0.95), 'ms');
      line(`${name}_samples`, phase, s.length, 'count');
    }
    line('flood_messages_written', phase, flooded.written, 'messages');
    line('flood_reconnects', phase, flooded.reconnects, 'connections');
  } finally {
    await server.stop();
  }
}

/** Resolves when the broker answered (PUBACK/SUBACK) or closed the connection; true when it answered. */
async function answered(client: RawMqtt, cmd: 'puback' | 'suback'): Promise<boolean> {
  return Promise.race([client.next(cmd).then(() => true, () => false), client.closed.then(() => false)]);
}

async function memoryPhase(phase: 'unlimited' | 'limited', env: Record<string, string>): Promise<void> {
  const CYCLES = 3;
  const server = await startServer(env, CYCLES);
  const { ready } = server;
  const report = (step: string, m: Memory) => {
    line(`memory_${step}_rss_mib`, phase, m.rssMiB, 'MiB');
    line(`memory_${step}_heap_used_mib`, phase, m.heapUsedMiB, 'MiB');
    line(`memory_${step}_heap_total_mib`, phase, m.heapTotalMiB, 'MiB');
    line(`memory_${step}_array_buffers_mib`, phase, m.arrayBuffersMiB, 'MiB');
  };
  try {
    report('start', await server.memory());
    const big = Buffer.alloc(MEMORY_MIB * 2 ** 20, 0x62);
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      const device = ready.devices[cycle - 1]!;
      let accepted = { oversize: 0, retained: 0, subscriptions: 0 };
      let client = await connectAs(ready, device);
      // Oversize publishes (QoS 1, not retained), then retained ones, each waited for.
      for (let i = 0; i < 3; i++) {
        if (client.socket.destroyed) client = await connectAs(ready, device);
        client.send({ cmd: 'publish', topic: `devices/${device.deviceId}/blob`, payload: big, qos: 1, messageId: 100 + i, retain: false, dup: false });
        if (await answered(client, 'puback')) accepted.oversize++;
      }
      for (let i = 0; i < 3; i++) {
        if (client.socket.destroyed) client = await connectAs(ready, device);
        client.send({ cmd: 'publish', topic: `devices/${device.deviceId}/retained/${i}`, payload: big, qos: 1, messageId: 200 + i, retain: true, dup: false });
        if (await answered(client, 'puback')) accepted.retained++;
      }
      if (client.socket.destroyed) client = await connectAs(ready, device);
      const filler = 'x'.repeat(1000);
      for (let i = 0; i < SUBSCRIPTIONS; i += 100) {
        client.send({ cmd: 'subscribe', messageId: 1 + ((i / 100) % 60000), subscriptions: Array.from({ length: 100 }, (_, j) => ({ topic: `devices/${device.deviceId}/${filler}/${i + j}`, qos: 0 as const })) });
        const suback = await client.next('suback');
        if (suback.cmd === 'suback') accepted.subscriptions += suback.granted.filter((g) => g !== 128).length;
      }
      line(`cycle${cycle}_oversize_accepted`, phase, accepted.oversize, 'of 3');
      line(`cycle${cycle}_retained_accepted`, phase, accepted.retained, 'of 3');
      line(`cycle${cycle}_subscriptions_granted`, phase, accepted.subscriptions, `of ${SUBSCRIPTIONS}`);
      report(`cycle${cycle}_flooded`, await server.memory());
      client.end();
      await client.closed;
      report(`cycle${cycle}_device_left`, await server.memory());
      const revoked = await httpsRequest(ready.apiUrl + routes.adminRevokeDevice(device.deviceId), ready.rootPem, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ready.adminToken}` },
        body: JSON.stringify({ reason: 'keyCompromise' }),
      });
      if (revoked.status !== 200) throw new Error(`revoke answered ${revoked.status}`);
      // The purge runs right after the cut; a refused reconnect shows the revocation is in force on the broker.
      const refused = await connectAs(ready, device).then((c) => (c.end(), 'admitted'), (error: Error) => error.message);
      if (refused === 'admitted') throw new Error('a revoked device was admitted');
      report(`cycle${cycle}_purged`, await server.memory());
      accepted = { oversize: 0, retained: 0, subscriptions: 0 };
    }
  } finally {
    await server.stop();
  }
}

for (const [phase, env] of [['unlimited', UNLIMITED], ['limited', {}]] as const) {
  if (PHASES.has('rtt')) await rttPhase(phase, env);
}
for (const [phase, env] of [['unlimited', UNLIMITED], ['limited', {}]] as const) {
  if (PHASES.has('memory')) await memoryPhase(phase, env);
}
