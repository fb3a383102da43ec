// A second Mosquitto (127.0.0.1:1883 belongs to the machine's) on a free port with mutual TLS, for the differential
// test and the benchmark baseline. Certificates and CRLs are written to a temp dir that is removed on stop.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from './wait-for.js';

export interface MosquittoOptions {
  port: number;
  caPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  crlPem?: string | undefined;
  /** e.g. ['taskset', '-c', '0'] */
  prefix?: string[];
}

export interface RunningMosquitto {
  child: ChildProcess;
  pid: number;
  port: number;
  output(): string;
  stop(): Promise<void>;
}

/** True when something accepts TCP connections on the port (mosquitto has no readiness signal of its own). */
function listening(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startMosquitto(options: MosquittoOptions): Promise<RunningMosquitto> {
  const dir = await mkdtemp(path.join(tmpdir(), 'enrolld-mosq-'));
  await chmod(dir, 0o755);
  const file = (name: string) => path.join(dir, name);
  await writeFile(file('ca.pem'), options.caPem);
  await writeFile(file('server.pem'), options.serverCertPem);
  await writeFile(file('server.key'), options.serverKeyPem, { mode: 0o644 });
  if (options.crlPem) await writeFile(file('crl.pem'), options.crlPem);
  const conf = [
    'per_listener_settings false',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'connection_messages false',
    'max_connections -1',
    'set_tcp_nodelay true',
    // Started as root: keep root so the temp files stay readable (test keys only).
    'user root',
    `listener ${options.port} 127.0.0.1`,
    `cafile ${file('ca.pem')}`,
    `certfile ${file('server.pem')}`,
    `keyfile ${file('server.key')}`,
    ...(options.crlPem ? [`crlfile ${file('crl.pem')}`] : []),
    'require_certificate true',
    'use_identity_as_username true',
    '',
  ].join('\n');
  await writeFile(file('mosquitto.conf'), conf);
  const argv = [...(options.prefix ?? []), 'mosquitto', '-c', file('mosquitto.conf')];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitFor(() => listening(options.port), 5000, `mosquitto listening on ${options.port}`, 50);
  } catch (error) {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}\n${out}`);
  }
  return {
    child,
    pid: child.pid!,
    port: options.port,
    output: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
