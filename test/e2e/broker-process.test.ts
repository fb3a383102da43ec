// The broker in its own process (`enrolld broker`), the revocation through the API process (`enrolld up`) by the CLI
// (`enrolld revoke`), and an API replica (`enrolld api`) on the same database and home: the cut must cross processes
// through Postgres NOTIFY (docs/architecture.md §4, §7).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { routes, type EnrollResponse } from '@enrolld/protocol';
import { makeCsr, randomDeviceId } from '../support/csr-factory.js';
import { postJson } from '../support/http.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { freePort, REPO_ROOT, spawnBroker, spawnEnrolld, ENROLLD_BIN, type BrokerProcess, type EnrolldProcess } from '../support/processes.js';
import { raceTimeout, report } from '../support/broker-harness.js';
import { refusalOf } from '../support/refusal.js';

const run = promisify(execFile);

describe('broker in its own process, revocation through the API process', () => {
  let db: TestDatabase;
  let home: string;
  let api: EnrolldProcess;
  let broker: BrokerProcess;
  let replica: EnrolldProcess;
  let httpsPort: number;
  let replicaPort: number;
  let brokerPort: number;
  let rootPem: string;
  let adminToken: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    home = await mkdtemp(path.join(tmpdir(), 'enrolld-split-'));
    httpsPort = await freePort();
    brokerPort = await freePort();
    const common = { ENROLLD_HOME: home, DATABASE_URL: db.url, LISTEN_HOST: '127.0.0.1' };
    api = await spawnEnrolld({ ...common, HTTPS_PORT: String(httpsPort), MQTTS_PORT: String(await freePort()) });
    broker = await spawnBroker({ ...common, MQTTS_PORT: String(brokerPort) });
    replicaPort = await freePort();
    replica = await spawnEnrolld({ ...common, HTTPS_PORT: String(replicaPort) }, ['api']);
    rootPem = await readFile(path.join(home, 'ca', 'root.pem'), 'utf8');
    adminToken = (await readFile(path.join(home, 'admin-token'), 'utf8')).trim();
  }, 120_000);
  afterAll(async () => {
    const replicaCode = await replica?.stop();
    const brokerCode = await broker?.stop();
    const apiCode = await api?.stop();
    await db?.drop();
    await rm(home, { recursive: true, force: true });
    expect(replicaCode).toBe(0);
    expect(brokerCode).toBe(0);
    expect(apiCode).toBe(0);
  });

  /** A token and an enrollment through the API at `apiUrl`, and a connect function to the broker process. */
  async function enrollForBroker(apiUrl: string, prefix: string) {
    const deviceId = randomDeviceId(prefix);
    const tokenRes = await postJson(apiUrl + routes.adminTokens, rootPem, { deviceId }, { authorization: `Bearer ${adminToken}` });
    expect(tokenRes.status).toBe(201);
    const token = tokenRes.json<Array<{ token: string }>>()[0]!.token;
    const csr = await makeCsr({ cn: deviceId });
    const enrolled = await postJson(apiUrl + routes.enroll, rootPem, { token, csr: csr.pem });
    expect(enrolled.status).toBe(201);
    const body = enrolled.json<EnrollResponse>();
    const key = csr.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const issuingPem = body.chain.split(/(?<=-----END CERTIFICATE-----\n?)/)[0]!;
    const connect = () =>
      new Promise<MqttClient>((resolve, reject) => {
        const c = mqtt.connect({
          protocol: 'mqtts', host: '127.0.0.1', port: brokerPort, servername: 'localhost', ca: rootPem, key, cert: body.certificate + issuingPem,
          clientId: deviceId, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000,
        });
        c.once('connect', () => resolve(c));
        c.once('error', (e) => { c.end(true); reject(e); });
        c.once('close', () => { c.end(true); reject(new Error('closed before CONNACK')); });
      });
    return { deviceId, body, connect };
  }

  it('enroll → connect to the broker process → `enrolld revoke` → the session ends and the device is refused', async () => {
    const apiUrl = `https://localhost:${httpsPort}`;
    const { deviceId, body, connect } = await enrollForBroker(apiUrl, 'split');
    const client = await connect();
    const closed = new Promise<number>((resolve) => client.stream.once('close', () => resolve(performance.now())));
    const t0 = performance.now();
    const cli = await run(process.execPath, [ENROLLD_BIN, 'revoke', deviceId, '--reason', 'keyCompromise'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ENROLLD_HOME: home, ENROLLD_URL: apiUrl },
    });
    const cliDone = performance.now();
    expect(cli.stdout.trim()).toBe(body.serial);
    expect(cli.stderr).toContain('revoked 1 certificate(s)');
    const end = await raceTimeout(closed, 10_000, -1);
    expect(end).toBeGreaterThan(0);
    client.end(true);
    // The broker process learns the revocation (CONNECT check) and the new CRL (TLS) from two notifications; whichever
    // it has applied first refuses the reconnect.
    const reconnect = await connect().then((c) => (c.end(true), 'connack 0'), refusalOf);
    expect(['tls-closed', 'connack 5']).toContain(reconnect);
    // The API process's own broker learned it too (same events in both modes): a second revoke is a no-op.
    const again = await run(process.execPath, [ENROLLD_BIN, 'revoke', deviceId], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ENROLLD_HOME: home, ENROLLD_URL: apiUrl },
    });
    expect(again.stderr).toContain('nothing to revoke');
    expect(broker.output()).toContain('revoked: live session closed');
    report('REV-PROCESS-SPLIT', end > 0 && reconnect !== 'connack 0', { reconnect, cliStartToSocketCloseMs: Math.round(end - t0), cliProcessMs: Math.round(cliDone - t0), closedBeforeCliExited: end < cliDone });
  });

  it('an `enrolld api` replica on the same database and home enrolls, and its revoke cuts the session on the broker process', async () => {
    const replicaUrl = `https://localhost:${replicaPort}`;
    const { body, deviceId, connect } = await enrollForBroker(replicaUrl, 'replica');
    const client = await connect();
    const closed = new Promise<void>((resolve) => client.stream.once('close', () => resolve()));
    const revoked = await postJson(replicaUrl + routes.adminRevokeDevice(deviceId), rootPem, { reason: 'keyCompromise' }, { authorization: `Bearer ${adminToken}` });
    expect(revoked.status).toBe(200);
    expect(revoked.json<{ serials: string[] }>().serials).toEqual([body.serial]);
    await closed;
    client.end(true);
    const reconnect = await connect().then((c) => (c.end(true), 'connack 0'), refusalOf);
    expect(['tls-closed', 'connack 5']).toContain(reconnect);
  });
});
