// `npm run bench:broker`: our broker against Mosquitto and stock aedes, measured in the same run on the same
// certificates, the broker pinned to CPU 0 and this load generator to CPU 1.
// One JSON line per figure: {"metric","value","unit","baseline","ratio"}; ratio > 1 is better than the baseline.
// Clients send what a real device sends: leaf + issuing CA, with a distinct certificate (and clientId) per device.
// CONNECT CPU is measured twice per broker process: fresh (after 2 s) and steady (after BENCH_STEADY_WARMUP s more),
// against Mosquitto, stock aedes and the Node TLS floor (Node's sockets and OpenSSL with no MQTT) in the same run.
// Those windows are 8 s of one broker at a time, minutes apart, and on a shared machine the same broker's CPU per CONNECT
// moves by ±20 % between them. The `paired` phase runs the brokers side by side and alternates the load between them in
// short turns, so each turn of ours has one of Mosquitto's within a couple of seconds (see pairedPhase below).
import { execFileSync, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import tls from 'node:tls';
import { createTestPki, pemOf, newKeys, type DeviceCert } from '../support/test-pki.js';
import { createTestDatabase } from '../support/pg.js';
import { connectPacket, percentile, revocationServiceFor } from '../support/broker-harness.js';
import { startMosquitto } from '../support/broker-mosquitto.js';
import { freePort } from '../support/processes.js';
import { contextFor, gcAndRss, idleLoad, line, NO_DELAY, procStat, recordCertificates, sleep, startNodeBroker as startBrokerChild, writeBrokerMaterial, type NodeBrokerMode } from './bench-support.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const IDLE = Number(process.env.BENCH_IDLE ?? 5000);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 150);
const INFLIGHT = 50;
// After the fresh window, each broker is kept under the same load for this many seconds more, then measured again on
// certificates it has never seen: CPU per CONNECT once V8 has finished compiling the hot paths (0 skips it).
const STEADY_WARMUP = Number(process.env.BENCH_STEADY_WARMUP ?? 30);
// Which phases to run (default all); and, for experiments only, extra environment for OUR broker process, e.g.
// BENCH_ENROLLD_ENV=MALLOC_MMAP_THRESHOLD_=16384. Lines measured with it carry "env"; the defaults are what ships.
const PHASES = new Set((process.env.BENCH_PHASES ?? 'connect,paired,idle,revoke').split(','));
// The paired phase: after PAIRED_WARM connects each, PAIRED_CYCLES cycles in which each broker in turn serves
// PAIRED_CHUNK connects; every connection is a certificate that broker has not seen.
const PAIRED_WARM = Number(process.env.BENCH_PAIRED_WARM ?? 1000);
const PAIRED_CYCLES = Number(process.env.BENCH_PAIRED_CYCLES ?? 30);
const PAIRED_CHUNK = Number(process.env.BENCH_PAIRED_CHUNK ?? 300);
// Split at the first `=` only: a value may hold one (NODE_OPTIONS=--max-semi-space-size=32).
const ENROLLD_ENV = Object.fromEntries((process.env.BENCH_ENROLLD_ENV ?? '').split(',').filter(Boolean).map((kv) => {
  const at = kv.indexOf('=');
  if (at <= 0) throw new Error(`BENCH_ENROLLD_ENV: "${kv}" is not NAME=value`);
  return [kv.slice(0, at), kv.slice(at + 1)];
}));
// BENCH_ENROLLD_NODE_FLAGS: node/V8 options for OUR broker process (space-separated, e.g. --max-semi-space-size=32),
// including those NODE_OPTIONS does not take. Lines measured with them carry "nodeFlags".
const ENROLLD_NODE_FLAGS = (process.env.BENCH_ENROLLD_NODE_FLAGS ?? '').split(' ').filter(Boolean);
// BENCH_BROKERS: which brokers the connect phase measures (default all four), to compare variants of one quickly.
const BROKERS = (process.env.BENCH_BROKERS ?? 'mosquitto,stock-aedes,node-tls,enrolld').split(',');
const ENV_NOTE = {
  ...(Object.keys(ENROLLD_ENV).length > 0 ? { env: process.env.BENCH_ENROLLD_ENV } : {}),
  ...(ENROLLD_NODE_FLAGS.length > 0 ? { nodeFlags: ENROLLD_NODE_FLAGS.join(' ') } : {}),
};

// This process is the load generator: CPU 1. Children are started under `taskset -c 0`.
try {
  execFileSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' });
} catch {
  process.stderr.write('taskset unavailable: running unpinned\n');
}

const startNodeBroker = (mode: NodeBrokerMode, dir: string, databaseUrl: string) =>
  mode === 'enrolld' ? startBrokerChild(mode, dir, databaseUrl, ENROLLD_ENV, ENROLLD_NODE_FLAGS) : startBrokerChild(mode, dir, databaseUrl);

function rawConnect(port: number, secureContext: tls.SecureContext, clientId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext, ...NO_DELAY });
    s.setTimeout(5000, () => {
      s.destroy();
      reject(new Error('timeout'));
    });
    s.once('secureConnect', () => s.write(connectPacket(clientId)));
    s.once('data', (d: Buffer) => {
      if (d[0] === 0x20 && d[3] === 0) {
        s.end(Buffer.from([0xe0, 0x00])); // DISCONNECT
        resolve();
      } else {
        s.destroy();
        reject(new Error(`CONNACK ${d.toString('hex')}`));
      }
    });
    s.once('error', (e) => {
      s.destroy();
      reject(e);
    });
  });
}

/** 50 loops; loop k uses devices k, k+50, k+100 … so every connection is a distinct device (identity cache misses). */
async function connectLoad(port: number, pid: number, devices: DeviceCert[], caPem: string, cache: Map<string, tls.SecureContext>, seconds = SECONDS) {
  const before = procStat(pid);
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let ok = 0;
  let failed = 0;
  let lastError = '';
  let next = 0;
  await Promise.all(
    Array.from({ length: INFLIGHT }, async () => {
      while (performance.now() < deadline) {
        const device = devices[next++ % devices.length]!;
        try {
          await rawConnect(port, contextFor(device, caPem, cache), device.deviceId);
          ok++;
        } catch (e) {
          failed++;
          lastError = (e as Error).message;
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpuS = procStat(pid).cpuS - before.cpuS;
  return { ok, failed, lastError, perSec: ok / elapsed, cpuMsPerConnect: (cpuS * 1000) / ok };
}

/** Connects each device once, INFLIGHT at a time (the paired phase's turns: a fixed number of connects, not a time). */
async function connectEach(port: number, devices: DeviceCert[], caPem: string, cache: Map<string, tls.SecureContext>) {
  let next = 0;
  let failed = 0;
  let lastError = '';
  await Promise.all(Array.from({ length: INFLIGHT }, async () => {
    while (next < devices.length) {
      const device = devices[next++]!;
      try {
        await rawConnect(port, contextFor(device, caPem, cache), device.deviceId);
      } catch (e) {
        failed++;
        lastError = (e as Error).message;
      }
    }
  }));
  return { ok: devices.length - failed, failed, lastError };
}

/**
 * Mosquitto, the Node TLS floor and our broker run at once, each pinned to CPU 0 (only the one under load uses it).
 * Each takes PAIRED_WARM connects first; then, PAIRED_CYCLES times, each serves PAIRED_CHUNK connects in turn (the
 * order rotates every cycle). A broker's CPU per CONNECT in a cycle is all the CPU it used from the cycle's start to its
 * end, idle turns included (V8 compiling or collecting after our turn counts against us), over its connects. Machine
 * noise that lasts longer than a cycle (~3 s) hits all three alike, so the ratios of one cycle compare like with like.
 */
async function pairedPhase(pool: DeviceCert[], dir: string, databaseUrl: string, caPem: string, cache: Map<string, tls.SecureContext>, mosquittoOptions: Parameters<typeof startMosquitto>[0]) {
  const needed = PAIRED_WARM + PAIRED_CYCLES * PAIRED_CHUNK;
  if (pool.length < needed) throw new Error(`paired phase: ${needed} certificates needed, ${pool.length} issued (raise BENCH_IDLE)`);
  const names = ['mosquitto', 'node-tls', 'enrolld'] as const;
  type Name = (typeof names)[number];
  const brokers = {} as Record<Name, { pid: number; port: number; stop(): Promise<void> }>;
  try {
    brokers.mosquitto = await startMosquitto(mosquittoOptions);
    brokers['node-tls'] = await startNodeBroker('node-tls', dir, databaseUrl);
    brokers.enrolld = await startNodeBroker('enrolld', dir, databaseUrl);
    await sleep(300);
    for (const name of names) {
      const warm = await connectEach(brokers[name].port, pool.slice(0, PAIRED_WARM), caPem, cache);
      if (warm.failed > 0) throw new Error(`paired phase: ${name} refused ${warm.failed} warm-up connects (${warm.lastError})`);
    }
    const cycles: Array<Record<Name, number>> = [];
    for (let cycle = 0; cycle < PAIRED_CYCLES; cycle++) {
      const chunk = pool.slice(PAIRED_WARM + cycle * PAIRED_CHUNK, PAIRED_WARM + (cycle + 1) * PAIRED_CHUNK);
      const before = Object.fromEntries(names.map((n) => [n, procStat(brokers[n].pid).cpuS])) as Record<Name, number>;
      const served = {} as Record<Name, number>;
      for (let k = 0; k < names.length; k++) {
        const name = names[(cycle + k) % names.length]!;
        const r = await connectEach(brokers[name].port, chunk, caPem, cache);
        if (r.failed > 0) throw new Error(`paired phase: ${name} refused ${r.failed} connects (${r.lastError})`);
        served[name] = r.ok;
      }
      cycles.push(Object.fromEntries(names.map((n) => [n, ((procStat(brokers[n].pid).cpuS - before[n]) * 1000) / served[n]])) as Record<Name, number>);
      if ((cycle + 1) % 10 === 0) process.stderr.write(`paired: ${cycle + 1} of ${PAIRED_CYCLES} cycles\n`);
    }
    return cycles;
  } finally {
    await Promise.all(Object.values(brokers).map((b) => b.stop()));
  }
}

async function main(): Promise<void> {
  const pki = await createTestPki({ name: 'bench' });
  const shared = await newKeys(); // one device key for all: the per-device cost is the certificate, not keygen
  process.stderr.write(`issuing ${IDLE} device certificates…\n`);
  const devices: DeviceCert[] = [];
  for (let i = 0; i < IDLE; i++) {
    const d = await pki.device(`bench-${i.toString().padStart(5, '0')}`, { keys: shared.keys });
    devices.push({ ...d, keyPem: shared.keyPem });
  }
  const dir = await writeBrokerMaterial(pki);
  const db = await createTestDatabase();
  const steadyCount = (PHASES.has('connect') && STEADY_WARMUP > 0) || PHASES.has('paired') ? IDLE : 0;
  if (steadyCount > 0) process.stderr.write(`issuing ${steadyCount} more for the steady-state windows…\n`);
  const steadyDevices: DeviceCert[] = [];
  for (let i = 0; i < steadyCount; i++) {
    const d = await pki.device(`steady-${i.toString().padStart(5, '0')}`, { keys: shared.keys });
    steadyDevices.push({ ...d, keyPem: shared.keyPem });
  }
  const revocable = await Promise.all(Array.from({ length: TRIALS }, (_, i) => pki.device(`revoke-${i}`, { keys: shared.keys }).then((d) => ({ ...d, keyPem: shared.keyPem }))));
  // Device rows for every certificate: our broker admits only what its registry holds.
  const recorded = [...devices, ...steadyDevices, ...revocable];
  await recordCertificates(db.pool, recorded);
  const service = revocationServiceFor(db.pool, pki);
  const crl = await service.ensureCrlCurrent();
  const cache = new Map<string, tls.SecureContext>();
  // Client-side contexts up front, so the load generator's PEM parsing never lands inside a measured window.
  for (const d of recorded) contextFor(d, pki.caChainPem, cache);
  const warm = devices.slice(0, 200);
  const measured = devices.slice(200);
  const mosquittoCrl = pemOf('X509 CRL', crl.der) + pki.rootArlPem;

  try {
    // ── 1. mTLS CONNECT at 50 in flight ──
    // Per broker process: 2 s of warm-up, the fresh window (what a broker just started costs, JIT compiles included),
    // then STEADY_WARMUP s more under load and the steady window, on certificates the process has not seen.
    type Window = Awaited<ReturnType<typeof connectLoad>>;
    const names = ['mosquitto', 'stock-aedes', 'node-tls', 'enrolld'] as const;
    const results = Object.fromEntries(names.map((n) => [n, [] as Window[]])) as Record<(typeof names)[number], Window[]>;
    const steady = Object.fromEntries(names.map((n) => [n, [] as Window[]])) as Record<(typeof names)[number], Window[]>;
    for (let round = 0; round < (PHASES.has('connect') ? ROUNDS : 0); round++) {
      for (const name of names.filter((n) => BROKERS.includes(n))) {
        const target = name === 'mosquitto'
          ? await startMosquitto({ port: await freePort(), caPem: pki.caChainPem, serverCertPem: pki.server.chainPem, serverKeyPem: pki.server.keyPem, crlPem: mosquittoCrl, prefix: ['taskset', '-c', '0'] })
          : await startNodeBroker(name, dir, db.url);
        try {
          if (name === 'mosquitto') await sleep(300);
          await connectLoad(target.port, target.pid, warm, pki.caChainPem, cache, 2).catch(() => undefined); // JIT warm-up
          results[name].push(await connectLoad(target.port, target.pid, measured, pki.caChainPem, cache));
          process.stderr.write(`round ${round} ${name}: ${JSON.stringify(results[name].at(-1))}\n`);
          if (STEADY_WARMUP > 0) {
            await connectLoad(target.port, target.pid, devices, pki.caChainPem, cache, STEADY_WARMUP);
            steady[name].push(await connectLoad(target.port, target.pid, steadyDevices, pki.caChainPem, cache));
            process.stderr.write(`round ${round} ${name} steady: ${JSON.stringify(steady[name].at(-1))}\n`);
          }
        } finally {
          await target.stop();
        }
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    if (PHASES.has('connect') && !names.every((n) => BROKERS.includes(n))) {
      for (const n of names.filter((b) => BROKERS.includes(b))) {
        process.stderr.write(`${n}: fresh ${mean(results[n].map((r) => r.cpuMsPerConnect)).toFixed(3)} ms/connect, steady ${mean(steady[n].map((r) => r.cpuMsPerConnect)).toFixed(3)} (BENCH_BROKERS subset: no ratio lines without all four)\n`);
      }
    } else if (PHASES.has('connect')) {
    const cpu = (n: keyof typeof results) => mean(results[n].map((r) => r.cpuMsPerConnect));
    const rate = (n: keyof typeof results) => mean(results[n].map((r) => r.perSec));
    line('mqtt_connect_broker_cpu_ms', cpu('enrolld'), 'ms/connect', cpu('mosquitto'), cpu('mosquitto') / cpu('enrolld'), { vs: 'mosquitto', stockAedes: +cpu('stock-aedes').toFixed(3), nodeTlsFloor: +cpu('node-tls').toFixed(3), rounds: ROUNDS, target: 'ratio >= 1.0 (CPU <= 1.0x mosquitto)', ...ENV_NOTE });
    // The floor: Node's sockets and OpenSSL with no MQTT (broker-bench-server.ts, node-tls). What any broker on Node pays.
    line('mqtt_connect_node_tls_floor_cpu_ms', cpu('node-tls'), 'ms/connect', cpu('mosquitto'), cpu('mosquitto') / cpu('node-tls'), { vs: 'mosquitto', rounds: ROUNDS });
    if (STEADY_WARMUP > 0) {
      const steadyCpu = (n: keyof typeof steady) => mean(steady[n].map((r) => r.cpuMsPerConnect));
      line('mqtt_connect_broker_cpu_ms_steady', steadyCpu('enrolld'), 'ms/connect', steadyCpu('mosquitto'), steadyCpu('mosquitto') / steadyCpu('enrolld'), { vs: 'mosquitto', stockAedes: +steadyCpu('stock-aedes').toFixed(3), nodeTlsFloor: +steadyCpu('node-tls').toFixed(3), after: `${2 + SECONDS + STEADY_WARMUP} s under load`, rounds: ROUNDS, target: 'ratio >= 1.0 (CPU <= 1.0x mosquitto)', ...ENV_NOTE });
    }
    line('mqtt_connect_rate_50_inflight', rate('enrolld'), 'connects/s', rate('mosquitto'), rate('enrolld') / rate('mosquitto'), { vs: 'mosquitto', stockAedes: +rate('stock-aedes').toFixed(1), failed: results.enrolld.reduce((a, r) => a + r.failed, 0), ...ENV_NOTE });
    }

    // ── 1b. paired, interleaved turns (pairedPhase) ──
    if (PHASES.has('paired')) {
      const cycles = await pairedPhase([...devices, ...steadyDevices], dir, db.url, pki.caChainPem, cache, { port: await freePort(), caPem: pki.caChainPem, serverCertPem: pki.server.chainPem, serverKeyPem: pki.server.keyPem, crlPem: mosquittoCrl, prefix: ['taskset', '-c', '0'] });
      // Every turn has the same number of connects: the mean over cycles is CPU over all measured connects.
      const perConnect = (n: 'mosquitto' | 'node-tls' | 'enrolld') => mean(cycles.map((c) => c[n]));
      const ratios = cycles.map((c) => c.mosquitto / c.enrolld).sort((a, b) => a - b);
      const third = Math.max(1, Math.floor(cycles.length / 3));
      const ratioOf = (part: typeof cycles) => mean(part.map((c) => c.mosquitto)) / mean(part.map((c) => c.enrolld));
      line('mqtt_connect_broker_cpu_ms_paired', perConnect('enrolld'), 'ms/connect', perConnect('mosquitto'), perConnect('mosquitto') / perConnect('enrolld'), {
        vs: 'mosquitto', nodeTlsFloor: +perConnect('node-tls').toFixed(3), cycles: cycles.length, connectsPerTurn: PAIRED_CHUNK, afterWarmup: PAIRED_WARM,
        cycleRatioMedian: +percentile(ratios, 0.5).toFixed(3), cycleRatioMin: +ratios[0]!.toFixed(3), cycleRatioMax: +ratios.at(-1)!.toFixed(3),
        firstThirdRatio: +ratioOf(cycles.slice(0, third)).toFixed(3), lastThirdRatio: +ratioOf(cycles.slice(-third)).toFixed(3),
        target: 'ratio >= 1.0 (CPU <= 1.0x mosquitto)', ...ENV_NOTE,
      });
      line('mqtt_connect_node_tls_floor_cpu_ms_paired', perConnect('node-tls'), 'ms/connect', perConnect('mosquitto'), perConnect('mosquitto') / perConnect('node-tls'), { vs: 'mosquitto', cycles: cycles.length });
    }

    // ── 2. idle RSS per connection at IDLE devices ──
    const perConn: Record<string, number> = {};
    for (const name of PHASES.has('idle') ? (['stock-aedes', 'enrolld', 'mosquitto'] as const) : []) {
      let target: { pid: number; port: number; child?: ChildProcess; stop(): Promise<void> };
      if (name === 'mosquitto') target = await startMosquitto({ port: await freePort(), caPem: pki.caChainPem, serverCertPem: pki.server.chainPem, serverKeyPem: pki.server.keyPem, crlPem: mosquittoCrl, prefix: ['taskset', '-c', '0'] });
      else target = await startNodeBroker(name, dir, db.url);
      try {
        await sleep(300);
        const before = await gcAndRss(target);
        const clients = await idleLoad(target.port, devices.slice(0, IDLE), pki.caChainPem, cache);
        await sleep(3000);
        const after = await gcAndRss(target);
        perConn[name] = (after - before) / clients.length;
        process.stderr.write(`idle ${name}: ${clients.length} connected, rss ${before} → ${after} KiB, ${perConn[name]!.toFixed(1)} KiB/conn\n`);
        await Promise.all(clients.map((c) => new Promise<void>((r) => c.end(true, {}, () => r()))));
      } finally {
        await target.stop();
      }
    }
    if (PHASES.has('idle')) line('idle_rss_per_connection', perConn.enrolld!, 'KiB/conn', perConn['stock-aedes']!, perConn['stock-aedes']! / perConn.enrolld!, { vs: 'stock-aedes', connections: IDLE, mosquitto: +perConn.mosquitto!.toFixed(1), target: 'ratio >= 1/0.7 = 1.43 (<= 0.7x stock aedes)', ...ENV_NOTE });

    // ── 3. revoke → socket closed (broker process pinned, revocation from this process through Postgres NOTIFY) ──
    if (!PHASES.has('revoke')) return;
    const b = await startNodeBroker('enrolld', dir, db.url);
    const latencies: number[] = [];
    try {
      for (const device of revocable) {
        const socket = tls.connect({ host: '127.0.0.1', port: b.port, servername: 'localhost', secureContext: contextFor(device, pki.caChainPem, cache), ...NO_DELAY });
        await new Promise<void>((resolve, reject) => {
          socket.once('secureConnect', () => socket.write(connectPacket(device.deviceId)));
          socket.once('data', (d: Buffer) => (d[0] === 0x20 && d[3] === 0 ? resolve() : reject(new Error(`CONNACK ${d.toString('hex')}`))));
          socket.once('error', reject);
        });
        socket.on('error', () => undefined);
        const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())));
        const t0 = performance.now();
        await service.revokeDevice(device.deviceId, { reason: 'keyCompromise', actor: 'bench' });
        let timer: NodeJS.Timeout | undefined;
        const end = await Promise.race([closed, new Promise<number>((r) => { timer = setTimeout(() => r(-1), 5000); })]);
        clearTimeout(timer);
        if (end > 0) latencies.push(end - t0);
      }
    } finally {
      await b.stop();
    }
    latencies.sort((x, y) => x - y);
    line('revoke_to_socket_closed_p50', percentile(latencies, 0.5), 'ms', null, null, { trials: revocable.length, closed: latencies.length });
    line('revoke_to_socket_closed_p99', percentile(latencies, 0.99), 'ms', 100, 100 / percentile(latencies, 0.99), { trials: revocable.length, closed: latencies.length, max: +(latencies.at(-1) ?? NaN).toFixed(1), target: 'p99 <= 100 ms (baseline column = target)' });
  } finally {
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
