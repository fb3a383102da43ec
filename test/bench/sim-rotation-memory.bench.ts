// `npm run bench:sim-memory`: the simulator's RSS growth per certificate rotation, with each retired certificate's TLS
// context released (closed) as the device does now, against the baseline of leaving it to the garbage collector.
// A TLS server (requestCert, this process) takes the connections; each variant runs in a child process of its own, so
// its RSS is its own: BENCH_DEVICES devices each hold a live mTLS connection, then BENCH_ROTATIONS rotations go round
// the fleet, BENCH_IN_FLIGHT at a time. A rotation is what a device does on renewal: a new certificate (a new
// credentials object, so a new context), a new connection with it, the old connection ended, the old certificate
// dropped (and released, in the `release` variant). Every certificate is the same leaf: the context is built anew per
// credentials object all the same, and no CA work muddies the figure.
// One JSON line per figure: {"metric","value","unit","baseline","ratio", ...}; ratio = release ÷ baseline (lower is better).
import { execFileSync, spawn } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createCredentialContexts } from '@enrolld/device-sim';
import type { DeviceCredentials } from '@enrolld/device-sim';
import { line } from './bench-support.js';

const DEVICES = Number(process.env.BENCH_DEVICES ?? 1000);
const ROTATIONS = Number(process.env.BENCH_ROTATIONS ?? 8000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 25);
const SELF = fileURLToPath(import.meta.url);

interface Material {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  leaf: string;
  leafKey: string;
}

function material(): Material {
  const dir = mkdtempSync(path.join(tmpdir(), 'sim-mem-bench-'));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=Bench CA', '-days', '1');
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1');
  openssl('req', ...ec, '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=bench-device');
  openssl('x509', '-req', '-in', 'leaf.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'leaf.pem', '-days', '1');
  const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
  return { dir, ca: read('ca.pem'), serverCert: read('server.pem'), serverKey: read('server.key'), leaf: read('leaf.pem'), leafKey: read('leaf.key') };
}

const rssKiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);

async function client(variant: 'release' | 'baseline', port: number, m: Material): Promise<void> {
  const contexts = createCredentialContexts({ ca: m.ca, sendChain: false });
  const privateKey = createPrivateKey(m.leafKey);
  let serial = 0;
  const issue = (n: number): DeviceCredentials => ({ deviceId: `bench-${n}`, serial: String(++serial), certificatePem: m.leaf, chainPem: [], notBefore: 0, notAfter: 0, privateKey });
  const open = (creds: DeviceCredentials) =>
    new Promise<tls.TLSSocket>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext: contexts(creds) });
      socket.once('secureConnect', () => resolve(socket));
      socket.once('error', reject);
    });
  const close = (socket: tls.TLSSocket) => new Promise<void>((resolve) => (socket.once('close', () => resolve()), socket.end()));
  const fleet: Array<{ creds: DeviceCredentials; socket: tls.TLSSocket }> = [];
  for (let i = 0; i < DEVICES; i++) {
    const creds = issue(i);
    fleet.push({ creds, socket: await open(creds) });
  }
  const before = rssKiB();
  let next = 0;
  const rotate = async (): Promise<void> => {
    for (let r = next++; r < ROTATIONS; r = next++) {
      const device = fleet[r % DEVICES]!;
      const old = device.creds;
      const oldSocket = device.socket;
      device.creds = issue(r % DEVICES);
      device.socket = await open(device.creds);
      await close(oldSocket);
      if (variant === 'release') contexts.release(old);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, rotate));
  const after = rssKiB();
  process.stdout.write(`${JSON.stringify({ variant, beforeKiB: before, afterKiB: after, held: contexts.held() })}\n`);
  for (const d of fleet) d.socket.destroy();
}

async function runChild(variant: string, port: number, dir: string): Promise<{ beforeKiB: number; afterKiB: number; held: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SELF, 'client', variant, String(port), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${variant} client exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as { beforeKiB: number; afterKiB: number; held: number };
}

async function main(): Promise<void> {
  const [mode, variant, portText, dir] = process.argv.slice(2);
  if (mode === 'client') {
    const read = (f: string) => readFileSync(path.join(dir!, f), 'utf8');
    const m: Material = { dir: dir!, ca: read('ca.pem'), serverCert: read('server.pem'), serverKey: read('server.key'), leaf: read('leaf.pem'), leafKey: read('leaf.key') };
    await client(variant as 'release' | 'baseline', Number(portText), m);
    return;
  }
  const m = material();
  const server = tls.createServer({ cert: m.serverCert, key: m.serverKey, ca: m.ca, requestCert: true, rejectUnauthorized: true }, (socket) => {
    socket.on('error', () => {});
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const baseline = await runChild('baseline', port, m.dir);
    const release = await runChild('release', port, m.dir);
    const perRotation = (r: { beforeKiB: number; afterKiB: number }) => (r.afterKiB - r.beforeKiB) / ROTATIONS;
    const extra = { devices: DEVICES, rotations: ROTATIONS, inFlight: IN_FLIGHT };
    line('sim RSS growth per rotation', perRotation(release), 'KiB', perRotation(baseline), perRotation(release) / perRotation(baseline), extra);
    line('sim RSS after the rotations', release.afterKiB / 1024, 'MiB', baseline.afterKiB / 1024, release.afterKiB / baseline.afterKiB, extra);
  } finally {
    server.close();
    rmSync(m.dir, { recursive: true, force: true });
  }
}

await main();
