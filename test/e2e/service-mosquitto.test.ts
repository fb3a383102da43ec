// A standard client end to end (docs/architecture.md §5, §6): `enrolld profile create` loads a seed tier,
// `enrolld token create --profile` makes a token for it, `enrolld service create` writes a service key (0600) and
// certificate; `mosquitto_sub` with that certificate receives several devices' telemetry from `devices/+/telemetry`,
// and the same filter from a device certificate gets SUBACK 0x80.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readCertificateIdentity } from '@enrolld/core/ca/index.js';
import { ENROLLD_BIN, REPO_ROOT } from '../support/processes.js';
import { enrollDevice } from '../support/renew-support.js';
import { mustConnect, type DeviceSession } from '../support/renew-mqtt.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';
import { waitFor } from '../support/wait-for.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('a service certificate with mosquitto_sub', () => {
  let server: TestServer;
  let work: string;
  const sessions: DeviceSession[] = [];

  function enrolld(args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      execFile(process.execPath, [ENROLLD_BIN, ...args], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ENROLLD_HOME: server.home, ENROLLD_URL: server.apiUrl } }, (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });
  }

  /** mosquitto_sub -d: its debug lines show the SUBACK ("Subscribed (mid: 1): <code>"), -v prints "topic payload". */
  function mosquittoSub(clientId: string, certFile: string, keyFile: string, filter: string, count: number) {
    // stdbuf: mosquitto_sub block-buffers stdout into a pipe, and the test reads the SUBACK line while it runs.
    const child = spawn('stdbuf', ['-oL', 'mosquitto_sub',
      '-h', 'localhost', '-p', String(server.running.mqttsPort), '-V', 'mqttv311', '--cafile', path.join(server.home, 'ca', 'root.pem'),
      '--cert', certFile, '--key', keyFile, '-i', clientId, '-t', filter, '-q', '1', '-v', '-d', '-C', String(count), '-W', '30',
    ]);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number>((resolve) => child.once('exit', (code) => resolve(code ?? -1)));
    return { output: () => output, exited, kill: () => child.kill() };
  }

  beforeAll(async () => {
    server = await startTestServer();
    work = await mkdtemp(path.join(tmpdir(), 'enrolld-service-'));
  });
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.end()));
    await server.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('profile create, token create --profile and service create from the CLI', async () => {
    const created = await enrolld(['profile', 'create', path.join(REPO_ROOT, 'examples', 'profiles', 'bronze.yaml')]);
    expect(created).toMatchObject({ code: 0, stderr: expect.stringContaining('profile bronze is at version 1') });
    const listed = await enrolld(['profile', 'list', '--json']);
    expect((JSON.parse(listed.stdout) as Array<{ name: string }>).map((p) => p.name).sort()).toEqual(['admin', 'bronze', 'device', 'service']);
    const token = await enrolld(['token', 'create', '--device', uniqueDeviceId('bronze'), '--profile', 'bronze']);
    expect(token.code).toBe(0);
    expect(token.stdout.trim()).toMatch(/^ebt_/);
    const unknown = await enrolld(['token', 'create', '--device', uniqueDeviceId(), '--profile', 'platinum']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/unknown profile "platinum"; existing profiles: admin, bronze, device, service/);
    const bad = path.join(work, 'bad.yaml');
    await writeFile(bad, 'name: wide\nkind: device\nacl:\n  - { effect: allow, action: subscribe, filter: "devices/+/telemetry" }\n');
    const refused = await enrolld(['profile', 'create', bad]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/acl\[0\] "devices\/\+\/telemetry": a device rule would reach another device's namespace/);
  });

  it("mosquitto_sub with the service certificate receives several devices' telemetry; the same filter from a device gets SUBACK 0x80", async () => {
    const name = uniqueDeviceId('ingest');
    const made = await enrolld(['service', 'create', name, '--out', work]);
    expect(made.code).toBe(0);
    const keyFile = path.join(work, `${name}.key`);
    const certFile = path.join(work, `${name}.pem`);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const pem = await readFile(certFile, 'utf8');
    expect(pem.match(/BEGIN CERTIFICATE/g)).toHaveLength(3); // certificate, issuing CA, root
    const leaf = new X509Certificate(pem);
    expect(leaf.subjectAltName).toBe(`URI:urn:enrolld:service:${name}`);
    expect(readCertificateIdentity(leaf.raw).profile).toEqual({ name: 'service', version: 1 });

    const devices = await Promise.all([1, 2, 3].map(() => enrollDevice(server, uniqueDeviceId('sensor'))));
    for (const creds of devices) sessions.push(await mustConnect(server.running.mqttsPort, server.rootPem, creds));

    const sub = mosquittoSub(name, certFile, keyFile, 'devices/+/telemetry', devices.length);
    await waitFor(() => /Subscribed \(mid: \d+\): 1/.test(sub.output()), 15_000, 'the SUBACK of mosquitto_sub');
    for (const [i, session] of sessions.entries()) await session.client.publishAsync(`devices/${devices[i]!.deviceId}/telemetry`, `t${i}`, { qos: 1 });
    expect(await sub.exited).toBe(0);
    const received = sub.output().split('\n').filter((line) => line.startsWith('devices/')).map((line) => line.split(' ')[0]);
    expect(received.sort()).toEqual(devices.map((d) => `devices/${d.deviceId}/telemetry`).sort());

    // A device certificate asking for the same filter: SUBACK 0x80 (128), and mosquitto_sub gives up.
    const device = devices[0]!;
    const deviceKey = path.join(work, 'device.key');
    const deviceCert = path.join(work, 'device.pem');
    await writeFile(deviceKey, device.keyPem, { mode: 0o600 });
    await writeFile(deviceCert, device.clientChainPem);
    await sessions[0]!.end(); // the same client id would take over the session
    const denied = mosquittoSub(device.deviceId, deviceCert, deviceKey, 'devices/+/telemetry', 1);
    await waitFor(() => /Subscribed \(mid: \d+\): 128/.test(denied.output()), 15_000, 'SUBACK 0x80 for the device');
    const code = await Promise.race([denied.exited, new Promise<string>((resolve) => setTimeout(() => resolve('running'), 5_000))]);
    if (code === 'running') denied.kill();
    expect(denied.output()).toMatch(/All subscription requests were denied/);
  });
});
