// `npm run bench:acl`: what profiles cost on the broker, in one run, the broker pinned to CPU 0 and this load
// generator to CPU 1. One JSON line per figure: {"metric","value","unit","baseline","ratio"}.
//  1. PUBLISH throughput and broker CPU per message: devices of the built-in `device` profile against devices of a
//     10-rule profile whose allowing rule is the last publish rule (nine rules read first), alternating rounds.
//     Target: the 10-rule profile costs ≤ 10% more (ratio ≥ 0.9).
//  2. A service receiving the telemetry of BENCH_SERVICE_DEVICES devices (1,000) publishing 1 msg/s each (QoS 1) for
//     BENCH_SERVICE_SECONDS: messages lost (target 0) and publish → delivery latency p50 and p99.
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import tls from 'node:tls';
import mqtt from 'mqtt';
import { createPgProfileStore } from '@enrolld/db';
import type { ProfileSpec } from '@enrolld/protocol';
import { connectPacket, percentile } from '../support/broker-harness.js';
import { createTestDatabase } from '../support/pg.js';
import { createTestPki, newKeys, type DeviceCert } from '../support/test-pki.js';
import { line, NO_DELAY, procStat, recordCertificates, sleep, startNodeBroker, writeBrokerMaterial } from './bench-support.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const PUBLISHERS = Number(process.env.BENCH_PUBLISHERS ?? 20);
const WINDOW = 100; // QoS 1 PUBLISHes in flight per connection
const SERVICE_DEVICES = Number(process.env.BENCH_SERVICE_DEVICES ?? 1000);
const SERVICE_SECONDS = Number(process.env.BENCH_SERVICE_SECONDS ?? 30);
const PHASES = new Set((process.env.BENCH_PHASES ?? 'publish,service').split(','));

try {
  execFileSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' });
} catch {
  process.stderr.write('taskset unavailable: running unpinned\n');
}

/** Nine publish rules that do not match devices/<id>/telemetry, then the one that does. */
const TEN_RULES: ProfileSpec = {
  name: 'bench10',
  kind: 'device',
  acl: [
    ...['config', 'state', 'events', 'logs', 'metrics', 'alarms', 'firmware', 'diag'].map((level) => ({ effect: 'allow' as const, action: 'publish' as const, filter: `devices/{id}/${level}/+` })),
    { effect: 'deny', action: 'publish', filter: 'devices/{id}/telemetry/secret' },
    { effect: 'allow', action: 'publish', filter: 'devices/{id}/#' },
  ] as ProfileSpec['acl'],
};

/** A QoS 1 PUBLISH packet (MQTT 3.1.1 §3.3) with a 2-byte packet id. */
function publishPacket(topic: string, payload: Buffer, packetId: number): Buffer {
  const t = Buffer.from(topic);
  const rem = 2 + t.length + 2 + payload.length;
  const header = rem < 128 ? Buffer.from([0x32, rem]) : Buffer.from([0x32, (rem & 0x7f) | 0x80, rem >> 7]);
  return Buffer.concat([header, Buffer.from([t.length >> 8, t.length & 255]), t, Buffer.from([packetId >> 8, packetId & 255]), payload]);
}

/** An admitted raw MQTT session (CONNACK 0 read). */
function session(port: number, device: DeviceCert, caPem: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: caPem, key: device.keyPem, cert: device.chainPem, ...NO_DELAY });
    s.once('secureConnect', () => s.write(connectPacket(device.deviceId)));
    s.once('data', (d: Buffer) => (d[0] === 0x20 && d[3] === 0 ? resolve(s) : reject(new Error(`CONNACK ${d.toString('hex')} for ${device.deviceId}`))));
    s.once('error', reject);
  });
}

/** Each session publishes WINDOW messages, waits for their WINDOW PUBACKs (4 bytes each), and again, until the deadline. */
async function publishLoad(pid: number, sockets: Array<{ socket: tls.TLSSocket; topic: string }>, seconds = SECONDS): Promise<{ perSec: number; cpuUsPerMsg: number }> {
  const payload = Buffer.from('{"seq":1,"temp":21.5}');
  const before = procStat(pid);
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let acked = 0;
  await Promise.all(
    sockets.map(async ({ socket, topic }) => {
      const batch = Buffer.concat(Array.from({ length: WINDOW }, (_, i) => publishPacket(topic, payload, i + 1)));
      let bytes = 0;
      let batchAcked: (() => void) | undefined;
      let closed: ((error: Error) => void) | undefined;
      const onData = (d: Buffer) => {
        bytes += d.length;
        if (bytes >= WINDOW * 4) {
          bytes -= WINDOW * 4;
          batchAcked?.();
        }
      };
      const onClose = () => closed?.(new Error(`closed: ${topic}`));
      socket.on('data', onData);
      socket.once('close', onClose);
      try {
        while (performance.now() < deadline) {
          await new Promise<void>((resolve, reject) => {
            batchAcked = resolve;
            closed = reject;
            socket.write(batch);
          });
          acked += WINDOW;
        }
      } finally {
        socket.off('data', onData);
        socket.off('close', onClose);
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  return { perSec: acked / elapsed, cpuUsPerMsg: ((procStat(pid).cpuS - before.cpuS) * 1e6) / acked };
}

async function main(): Promise<void> {
  const pki = await createTestPki({ name: 'bench-acl' });
  const shared = await newKeys();
  const issue = async (id: string, options: Parameters<typeof pki.device>[1] = {}) => ({ ...(await pki.device(id, { keys: shared.keys, ...options })), keyPem: shared.keyPem });
  const dir = await writeBrokerMaterial(pki);
  const db = await createTestDatabase();
  try {
    await createPgProfileStore(db.pool).create(TEN_RULES, 'bench');
    // ── 1. PUBLISH: device profile vs 10 rules ──
    if (PHASES.has('publish')) {
      const plain = await Promise.all(Array.from({ length: PUBLISHERS }, (_, i) => issue(`pub-device-${i}`)));
      const ruled = await Promise.all(Array.from({ length: PUBLISHERS }, (_, i) => issue(`pub-rules-${i}`, { profile: { name: 'bench10', version: 1 } })));
      await recordCertificates(db.pool, plain);
      await recordCertificates(db.pool, ruled, 'device', 'bench10');
      const results: Record<'device' | 'bench10', Array<{ perSec: number; cpuUsPerMsg: number }>> = { device: [], bench10: [] };
      const broker = await startNodeBroker('enrolld', dir, db.url);
      try {
        for (let round = 0; round < ROUNDS; round++) {
          // Alternating which goes first, so neither profile always meets a fresher (or warmer) broker.
          const order = [['device', plain], ['bench10', ruled]] as const;
          for (const [name, group] of round % 2 === 0 ? order : [...order].reverse()) {
            const sockets = await Promise.all(group.map(async (d) => ({ socket: await session(broker.port, d, pki.caChainPem), topic: `devices/${d.deviceId}/telemetry` })));
            await publishLoad(broker.pid, sockets, 1); // warm-up (JIT, TLS buffers) outside the measured window
            const result = await publishLoad(broker.pid, sockets);
            results[name].push(result);
            for (const { socket } of sockets) socket.destroy();
            process.stderr.write(`round ${round} ${name}: ${JSON.stringify(result)}\n`);
            await sleep(500);
          }
        }
      } finally {
        await broker.stop();
      }
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      const rate = (n: 'device' | 'bench10') => mean(results[n].map((r) => r.perSec));
      const cpu = (n: 'device' | 'bench10') => mean(results[n].map((r) => r.cpuUsPerMsg));
      line('acl_publish_throughput_10_rules', rate('bench10'), 'msgs/s', rate('device'), rate('bench10') / rate('device'), { vs: 'device profile', publishers: PUBLISHERS, window: WINDOW, rounds: ROUNDS, target: 'ratio >= 0.9 (<= 10% overhead)' });
      line('acl_publish_broker_cpu_10_rules', cpu('bench10'), 'us/msg', cpu('device'), cpu('device') / cpu('bench10'), { vs: 'device profile', rounds: ROUNDS, target: 'ratio >= 0.9 (<= 10% overhead)' });
    }

    // ── 2. A service receiving 1,000 devices × 1 msg/s ──
    if (PHASES.has('service')) {
      process.stderr.write(`issuing ${SERVICE_DEVICES} device certificates…\n`);
      const devices: DeviceCert[] = [];
      for (let i = 0; i < SERVICE_DEVICES; i++) devices.push(await issue(`fleet-${String(i).padStart(5, '0')}`));
      const serviceName = 'bench-ingest';
      const service = await issue(serviceName, { sanUris: [`urn:enrolld:service:${serviceName}`], profile: { name: 'service', version: 1 } });
      await recordCertificates(db.pool, devices);
      await recordCertificates(db.pool, [service], 'service', 'service');
      const broker = await startNodeBroker('enrolld', dir, db.url);
      try {
        const latencies: number[] = [];
        let received = 0;
        const subscriber = mqtt.connect({
          protocol: 'mqtts', host: '127.0.0.1', port: broker.port, servername: 'localhost', ca: pki.caChainPem, key: service.keyPem, cert: service.chainPem,
          clientId: serviceName, protocolVersion: 4, clean: true, reconnectPeriod: 0,
        });
        subscriber.on('message', (_topic, payload) => {
          received++;
          latencies.push(performance.now() - Number(payload.toString()));
        });
        await new Promise<void>((resolve, reject) => {
          subscriber.once('connect', () => subscriber.subscribe('devices/+/telemetry', { qos: 1 }, (error, granted) => (error || granted?.[0]?.qos !== 1 ? reject(error ?? new Error('SUBACK refused')) : resolve())));
          subscriber.once('error', reject);
        });
        const sockets: tls.TLSSocket[] = [];
        for (let i = 0; i < devices.length; i += 50) sockets.push(...(await Promise.all(devices.slice(i, i + 50).map((d) => session(broker.port, d, pki.caChainPem)))));
        process.stderr.write(`${sockets.length} devices and the service connected; publishing ${SERVICE_SECONDS} s\n`);
        const cpuBefore = procStat(broker.pid).cpuS;
        let sent = 0;
        let packetId = 0;
        // Each device publishes once per second at its own phase within the second.
        const timers = sockets.map((socket, i) =>
          setTimeout(() => {
            const tick = () => {
              packetId = (packetId % 65_535) + 1;
              socket.write(publishPacket(`devices/${devices[i]!.deviceId}/telemetry`, Buffer.from(String(performance.now())), packetId));
              sent++;
            };
            tick();
            timers[i] = setInterval(tick, 1000);
          }, (i / sockets.length) * 1000),
        );
        await sleep(SERVICE_SECONDS * 1000);
        for (const t of timers) clearInterval(t);
        const deadline = performance.now() + 10_000;
        while (received < sent && performance.now() < deadline) await sleep(50);
        const cpuS = procStat(broker.pid).cpuS - cpuBefore;
        latencies.sort((a, b) => a - b);
        line('service_fanin_lost_messages', sent - received, 'messages', 0, null, { sent, received, devices: sockets.length, ratePerDevice: '1 msg/s', seconds: SERVICE_SECONDS, target: '0' });
        line('service_fanin_latency_p50', percentile(latencies, 0.5), 'ms', null, null, { samples: latencies.length });
        line('service_fanin_latency_p99', percentile(latencies, 0.99), 'ms', null, null, { samples: latencies.length, max: +(latencies.at(-1) ?? NaN).toFixed(1) });
        line('service_fanin_broker_cpu', (cpuS * 100) / SERVICE_SECONDS, '% of one core', null, null, { msgsPerSec: Math.round(sent / SERVICE_SECONDS) });
        for (const s of sockets) s.destroy();
        subscriber.end(true);
      } finally {
        await broker.stop();
      }
    }
  } finally {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
