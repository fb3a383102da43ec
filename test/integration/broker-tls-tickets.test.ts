// What a broker sends after a full TLS 1.3 handshake, with the broker's own listener in a process of its own: as deployed
// (node --openssl-config=deploy/openssl-broker.cnf, docker-compose's brokers) no NewSessionTicket at all, and without that
// file the two stateful tickets OpenSSL 3 sends under SSL_OP_NO_TICKET, which no client can resume with (Node keeps no
// server-side session cache). Either way the device's certificate is verified and the connection carries data.
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { writeBrokerMaterial } from '../bench/bench-support.js';
import { announcedPort, REPO_ROOT } from '../support/processes.js';
import { createTestPki, type DeviceCert, type TestPki } from '../support/test-pki.js';

interface Listener {
  port: number;
  child: ChildProcess;
}

async function startListener(dir: string, nodeArgs: string[]): Promise<Listener> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', path.join(REPO_ROOT, 'test/support/tls-listener-child.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, OPENSSL_CONF: '', LISTENER_DIR: dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return { port: await announcedPort(child, 'listener'), child };
}

function stop(listener: Listener | undefined): Promise<void> {
  if (!listener || listener.child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    listener.child.once('exit', () => resolve());
    listener.child.kill('SIGTERM');
  });
}

/** One device connection, read until the broker closes it: the tickets it was sent, the protocol and the data. */
function handshake(port: number, device: DeviceCert, caPem: string): Promise<{ tickets: number; protocol: string | null; data: string }> {
  return new Promise((resolve, reject) => {
    let tickets = 0;
    let protocol: string | null = null;
    let data = '';
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: caPem, key: device.keyPem, cert: device.chainPem });
    socket.on('session', () => tickets++);
    socket.once('secureConnect', () => (protocol = socket.getProtocol()));
    socket.on('data', (chunk: Buffer) => (data += chunk.toString()));
    socket.once('end', () => {
      socket.destroy();
      resolve({ tickets, protocol, data });
    });
    socket.once('error', reject);
  });
}

describe('TLS session tickets after a full handshake', () => {
  let pki: TestPki;
  let device: DeviceCert;
  let dir: string;
  let deployed: Listener | undefined;
  let bare: Listener | undefined;

  beforeAll(async () => {
    pki = await createTestPki({ name: 'tickets' });
    device = await pki.device('tickets-device');
    dir = await writeBrokerMaterial(pki);
    [deployed, bare] = await Promise.all([
      startListener(dir, [`--openssl-config=${path.join(REPO_ROOT, 'deploy/openssl-broker.cnf')}`]),
      startListener(dir, []),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([stop(deployed), stop(bare)]);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('with deploy/openssl-broker.cnf the broker sends no NewSessionTicket', async () => {
    const answer = await handshake(deployed!.port, device, pki.caChainPem);
    expect(answer).toEqual({ tickets: 0, protocol: 'TLSv1.3', data: '!' });
  });

  it('without it, OpenSSL sends two tickets although the broker turned tickets off', async () => {
    const answer = await handshake(bare!.port, device, pki.caChainPem);
    expect(answer).toEqual({ tickets: 2, protocol: 'TLSv1.3', data: '!' });
  });
});
