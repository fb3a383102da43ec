// `npm run bench:connect-instructions`: instructions per mTLS CONNECT, counted by callgrind (needs valgrind), for our
// broker and, as the baseline in the same run, the Node TLS floor (broker-bench-server.ts `node-tls`: the same TLS
// options, no MQTT). CPU time in `bench:broker` moves by ±20 % between windows on a shared machine; instruction
// counts move by about 1 %, so they show whether a change to the CONNECT path removed work. They are not time: an
// instruction of our JavaScript (pointer chasing, property lookups) takes several times as long as one of OpenSSL's
// arithmetic, so a share of instructions understates JavaScript's share of the time (docs/architecture.md §6).
// Each broker process takes BENCH_CG_WARM connects uninstrumented (V8 compiles the hot paths meanwhile; 4,000 leave
// it quiet), then BENCH_CG_MEASURED connects with instrumentation on, 8 in flight, each with a certificate of its own.
// One JSON line per figure: the main thread's instructions, and all threads' (V8's compiler and GC helpers too).
// BENCH_CG_NODE_FLAGS: node options for both brokers (e.g. --max-semi-space-size=64), marked on the lines.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { createTestPki, newKeys, type DeviceCert } from '../support/test-pki.js';
import { createTestDatabase } from '../support/pg.js';
import { connectPacket } from '../support/broker-harness.js';
import { announcedPort } from '../support/processes.js';
import { contextFor, line, NO_DELAY, recordCertificates, writeBrokerMaterial, type NodeBrokerMode } from './bench-support.js';

const WARM = Number(process.env.BENCH_CG_WARM ?? 4000);
const MEASURED = Number(process.env.BENCH_CG_MEASURED ?? 400);
const NODE_FLAGS = (process.env.BENCH_CG_NODE_FLAGS ?? '').split(' ').filter(Boolean);
const FLAGS_NOTE = NODE_FLAGS.length > 0 ? { nodeFlags: NODE_FLAGS.join(' ') } : {};
const INFLIGHT = 8;

try {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
} catch {
  process.stderr.write('bench:connect-instructions needs valgrind (apt-get install valgrind)\n');
  process.exit(2);
}

/** CONNECT, CONNACK 0, DISCONNECT; false when the broker did not admit it. */
function connectOnce(port: number, secureContext: tls.SecureContext, clientId: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext, ...NO_DELAY });
    let admitted = false;
    s.on('error', () => undefined); // a reset after DISCONNECT is the broker closing first
    s.once('close', () => resolve(admitted));
    s.once('secureConnect', () => s.write(connectPacket(clientId)));
    s.once('data', (d: Buffer) => {
      admitted = d[0] === 0x20 && d[3] === 0;
      if (admitted) s.end(Buffer.from([0xe0, 0x00]));
      else s.destroy();
    });
  });
}

async function load(port: number, devices: DeviceCert[], caPem: string, cache: Map<string, tls.SecureContext>): Promise<number> {
  let next = 0;
  let refused = 0;
  await Promise.all(Array.from({ length: INFLIGHT }, async () => {
    while (next < devices.length) {
      const device = devices[next++]!;
      if (!(await connectOnce(port, contextFor(device, caPem, cache), device.deviceId))) refused++;
    }
  }));
  return refused;
}

/** Instructions per measured CONNECT: the main thread's, and all threads'. */
async function count(mode: Exclude<NodeBrokerMode, 'stock-aedes'>, devices: DeviceCert[], material: { dir: string; databaseUrl: string; caPem: string; cache: Map<string, tls.SecureContext> }) {
  const out = await mkdtemp(path.join(tmpdir(), 'enrolld-cg-'));
  const child = spawn('valgrind', [
    '--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${out}/cg.%p`,
    process.execPath, ...NODE_FLAGS, '--import', 'tsx', path.resolve('test/bench/broker-bench-server.ts'),
  ], { env: { ...process.env, BENCH_MODE: mode, BENCH_DIR: material.dir, DATABASE_URL: material.databaseUrl }, stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const port = await announcedPort(child, `${mode} broker under valgrind`);
    const warm = devices.slice(0, WARM);
    const measured = devices.slice(WARM, WARM + MEASURED);
    process.stderr.write(`${mode}: ${warm.length} warm-up connects…\n`);
    await load(port, warm, material.caPem, material.cache);
    execFileSync('callgrind_control', ['-i', 'on', String(child.pid)], { stdio: 'ignore' });
    const refused = await load(port, measured, material.caPem, material.cache);
    execFileSync('callgrind_control', ['-i', 'off', String(child.pid)], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['-d', String(child.pid)], { stdio: 'ignore' });
    if (refused > 0) throw new Error(`${mode}: ${refused} of ${measured.length} measured CONNECTs refused`);
    // One dump file per thread; thread 1 is the main thread (the event loop).
    let mainThread = 0;
    let allThreads = 0;
    for (const file of await readdir(out)) {
      const text = await readFile(path.join(out, file), 'utf8');
      const totals = /^totals: (\d+)/m.exec(text);
      if (!totals || !/^desc: Trigger: dump/m.test(text)) continue;
      allThreads += Number(totals[1]);
      if (file.endsWith('-01')) mainThread = Number(totals[1]);
    }
    return { mainThread: mainThread / measured.length, allThreads: allThreads / measured.length };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(null)));
    await rm(out, { recursive: true, force: true });
  }
}

const pki = await createTestPki({ name: 'bench-cg' });
const shared = await newKeys();
process.stderr.write(`issuing ${WARM + MEASURED} device certificates…\n`);
const devices: DeviceCert[] = [];
for (let i = 0; i < WARM + MEASURED; i++) devices.push({ ...(await pki.device(`cg-${i}`, { keys: shared.keys })), keyPem: shared.keyPem });
const dir = await writeBrokerMaterial(pki);
const db = await createTestDatabase();
try {
  await recordCertificates(db.pool, devices);
  const cache = new Map<string, tls.SecureContext>();
  for (const d of devices) contextFor(d, pki.caChainPem, cache);
  const material = { dir, databaseUrl: db.url, caPem: pki.caChainPem, cache };
  const floor = await count('node-tls', devices, material);
  const ours = await count('enrolld', devices, material);
  const extra = { warm: WARM, measured: MEASURED, ...FLAGS_NOTE };
  line('connect_instructions_main_thread', ours.mainThread, 'instructions/connect', floor.mainThread, floor.mainThread / ours.mainThread, { vs: 'node-tls floor', ...extra });
  line('connect_instructions_all_threads', ours.allThreads, 'instructions/connect', floor.allThreads, floor.allThreads / ours.allThreads, { vs: 'node-tls floor', ...extra });
} finally {
  await db.drop();
  await rm(dir, { recursive: true, force: true });
}
process.exit(0);
