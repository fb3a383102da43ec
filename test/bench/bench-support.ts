// Shared by the broker benchmarks: the broker under test in a child process pinned to CPU 0, its CPU and RSS from
// /proc, one JSON line per figure, and the certificate material and records the broker admits.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import mqtt, { type MqttClient } from 'mqtt';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { DeviceCert, TestPki } from '../support/test-pki.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function procStat(pid: number): { cpuS: number; rssKiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { cpuS: (Number(f[11]) + Number(f[12])) / 100, rssKiB: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) };
}

export function line(metric: string, value: number, unit: string, baseline: number | null, ratio: number | null, extra: Record<string, unknown> = {}): void {
  const round = (x: number | null) => (x === null || !Number.isFinite(x) ? x : +x.toFixed(3));
  process.stdout.write(`${JSON.stringify({ metric, value: round(value), unit, baseline: round(baseline), ratio: round(ratio), ...extra })}\n`);
}

// TCP_NODELAY on the client too (the reference bench sets it); Node accepts it on tls.connect, @types/node lacks it.
export const NO_DELAY = { noDelay: true } as unknown as tls.ConnectionOptions;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Child {
  pid: number;
  port: number;
  child: ChildProcess;
  lines: string[];
  stop(): Promise<void>;
}

/** Our broker or stock aedes in a child pinned to CPU 0; the pid measured is node's own (taskset execs it). */
/** What broker-bench-server.ts runs: our broker, stock aedes behind mTLS, or the Node TLS floor (no MQTT). */
export type NodeBrokerMode = 'enrolld' | 'stock-aedes' | 'node-tls';

export async function startNodeBroker(mode: NodeBrokerMode, dir: string, databaseUrl: string, extraEnv: Record<string, string> = {}, nodeFlags: string[] = []): Promise<Child> {
  // `node --import tsx` (not the tsx CLI, which would fork): the pid we read /proc of is the broker itself.
  const child = spawn('taskset', ['-c', '0', process.execPath, ...nodeFlags, '--expose-gc', '--import', 'tsx', path.join(ROOT, 'test/bench/broker-bench-server.ts')], {
    cwd: ROOT,
    env: { ...process.env, BENCH_MODE: mode, BENCH_DIR: dir, DATABASE_URL: databaseUrl, ...extraEnv },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  let buffer = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => {
      buffer += c.toString();
      let i;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const l = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        lines.push(l);
        if (l.startsWith('{"port"')) resolve((JSON.parse(l) as { port: number }).port);
      }
    });
    void exited.then(() => reject(new Error(`${mode} broker exited`)));
  });
  await sleep(500);
  return {
    pid: child.pid!,
    port,
    child,
    lines,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The broker's TLS material in a temp directory, as broker-bench-server.ts reads it. */
export async function writeBrokerMaterial(pki: TestPki): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'enrolld-bench-'));
  await writeFile(path.join(dir, 'server.key'), pki.server.keyPem);
  await writeFile(path.join(dir, 'server-chain.pem'), pki.server.chainPem);
  await writeFile(path.join(dir, 'ca-chain.pem'), pki.caChainPem);
  await writeFile(path.join(dir, 'issuing.pem'), pki.issuing.certPem);
  return dir;
}

/** Identity and certificate rows for every certificate: the broker admits only what its registry holds. */
export async function recordCertificates(pool: pg.Pool, certs: DeviceCert[], kind: 'device' | 'service' = 'device', profile = 'device'): Promise<void> {
  await pool.query(`INSERT INTO devices (id, kind, profile) SELECT unnest($1::text[]), $2, $3`, [certs.map((d) => d.deviceId), kind, profile]);
  await pool.query(
    `INSERT INTO certificates (serial, device_id, identity_kind, profile, public_key_sha256, csr_sha256, tbs_der, der, not_before, not_after, issued_at)
     SELECT s, d, $6, $7, '\\x00'::bytea, '\\x00'::bytea, der, der, nb, na, now()
       FROM unnest($1::text[], $2::text[], $3::bytea[], $4::timestamptz[], $5::timestamptz[]) AS t(s, d, der, nb, na)`,
    [certs.map((d) => d.serial), certs.map((d) => d.deviceId), certs.map((d) => d.der), certs.map((d) => d.notBefore), certs.map((d) => d.notAfter), kind, profile],
  );
}

/** RSS after a GC: SIGUSR2 makes broker-bench-server.ts collect (it runs with --expose-gc); Mosquitto has no GC. */
export async function gcAndRss(b: { pid: number; child?: ChildProcess }): Promise<number> {
  if (b.child) {
    process.kill(b.pid, 'SIGUSR2');
    await sleep(1500);
  }
  return procStat(b.pid).rssKiB;
}

/** What a client needs to present: the device's key and chain (a test PKI cert, or one the API issued). */
export type ClientIdentity = Pick<DeviceCert, 'deviceId' | 'keyPem' | 'chainPem'>;

export function contextFor(device: ClientIdentity, caPem: string, cache: Map<string, tls.SecureContext>): tls.SecureContext {
  let ctx = cache.get(device.deviceId);
  if (!ctx) {
    ctx = tls.createSecureContext({ ca: caPem, key: device.keyPem, cert: device.chainPem });
    cache.set(device.deviceId, ctx);
  }
  return ctx;
}

/** Up to devices.length idle MQTT sessions (CONNECT, no subscription), 20 handshakes in flight. */
export async function idleLoad(port: number, devices: readonly ClientIdentity[], caPem: string, cache: Map<string, tls.SecureContext>): Promise<MqttClient[]> {
  const clients: MqttClient[] = [];
  let next = 0;
  const deadline = Date.now() + 600_000;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < devices.length && Date.now() < deadline) {
        const device = devices[next++]!;
        await new Promise<void>((resolve) => {
          const c = mqtt.connect({
            protocol: 'mqtts', host: '127.0.0.1', port, servername: 'localhost', secureContext: contextFor(device, caPem, cache), noDelay: true,
            clientId: device.deviceId, protocolVersion: 4, clean: true, keepalive: 600, reconnectPeriod: 0, connectTimeout: 10_000,
          } as mqtt.IClientOptions);
          c.once('connect', () => {
            clients.push(c);
            resolve();
          });
          c.once('error', () => {
            c.end(true);
            resolve();
          });
        });
      }
    }),
  );
  return clients;
}
