// The admin revoke API, GET /v1/crl and the in-process broker, through the real composition (`enrolld up`, port 0).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import mqtt, { type MqttClient } from 'mqtt';
import { routes, type EnrollResponse } from '@enrolld/protocol';
import { makeCsr, randomDeviceId } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { opensslText } from '../support/openssl.js';
import { startTestServer, type TestServer } from '../support/server-harness.js';
import { raceTimeout, report } from '../support/broker-harness.js';
import { refusalOf } from '../support/refusal.js';

interface Enrolled {
  deviceId: string;
  keyPem: string;
  certPem: string;
  chainPem: string;
  serial: string;
}

describe('revocation API and CRL', () => {
  let server: TestServer;
  let auth: Record<string, string>;

  beforeAll(async () => {
    server = await startTestServer();
    auth = { authorization: `Bearer ${server.adminToken}` };
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function enroll(prefix: string): Promise<Enrolled> {
    const deviceId = randomDeviceId(prefix);
    const token = await server.createToken(deviceId);
    const csr = await makeCsr({ cn: deviceId });
    const res = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: csr.pem });
    expect(res.status).toBe(201);
    const body = res.json<EnrollResponse>();
    return {
      deviceId,
      keyPem: csr.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      certPem: body.certificate,
      chainPem: body.chain,
      serial: body.serial,
    };
  }

  function connect(device: Enrolled): Promise<MqttClient> {
    return new Promise((resolve, reject) => {
      const client = mqtt.connect({
        protocol: 'mqtts',
        host: '127.0.0.1',
        port: server.running.mqttsPort,
        servername: 'localhost',
        ca: server.rootPem,
        key: device.keyPem,
        // What a real device sends: its certificate and the issuing CA.
        cert: device.certPem + device.chainPem.split(/(?<=-----END CERTIFICATE-----\n?)/)[0],
        clientId: device.deviceId,
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      });
      client.once('connect', () => resolve(client));
      client.once('error', (error) => {
        client.end(true);
        reject(error);
      });
      // A TLS-level refusal may show up only as a close.
      client.once('close', () => {
        client.end(true);
        reject(new Error('closed before CONNACK'));
      });
    });
  }

  it('revokes a device: 200 with the serials, live session cut, CRL lists the serial; a second revoke is a no-op', async () => {
    const device = await enroll('api');
    const client = await connect(device);
    const closed = new Promise<number>((resolve) => client.stream.once('close', () => resolve(performance.now())));
    const t0 = performance.now();
    const first = await postJson(server.apiUrl + routes.adminRevokeDevice(device.deviceId), server.rootPem, { reason: 'keyCompromise' }, auth);
    expect(first.status).toBe(200);
    expect(first.json()).toMatchObject({ deviceId: device.deviceId, outcome: 'revoked', reason: 'keyCompromise', serials: [device.serial] });
    const closedAt = await raceTimeout(closed, 5000, -1);
    expect(closedAt).toBeGreaterThan(0);
    client.end(true);

    const second = await postJson(server.apiUrl + routes.adminRevokeDevice(device.deviceId), server.rootPem, { reason: 'keyCompromise' }, auth);
    expect(second.status).toBe(200);
    expect(second.json()).toMatchObject({ outcome: 'already-revoked', serials: [] });

    const crl = await httpsRequest(server.apiUrl + routes.crl, server.rootPem);
    expect(crl.status).toBe(200);
    expect(crl.headers['content-type']).toMatch(/^application\/pkix-crl/);
    const der = await new Promise<Buffer>((resolve, reject) => {
      // httpsRequest decodes as UTF-8; fetch the bytes again raw.
      import('node:https').then(({ default: https }) =>
        https.get(server.apiUrl + routes.crl, { ca: server.rootPem }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks)));
        }).on('error', reject),
      );
    });
    const text = (await opensslText('crl', der)).stdout;
    // openssl prints the content octets, as the canonical serial holds them.
    expect(text.toLowerCase()).toContain(device.serial);
    expect(text).toContain('Key Compromise');
    // The in-process broker learned the revocation before the API answered: CONNECT is refused with CONNACK 5
    // (no CRL in the broker's TLS context, docs/architecture.md §7).
    const reconnect = await connect(device).then((c) => (c.end(true), 'connack 0'), refusalOf);
    report('REV-API', closedAt > 0 && reconnect === 'connack 5', { revokeToCloseMs: Math.round(closedAt - t0), reconnect });
    expect(reconnect).toBe('connack 5');
  });

  it('revokes one certificate by serial; unknown ids and serials are 404, bad input is 400, no token is 401', async () => {
    const device = await enroll('serial');
    const bySerial = await postJson(server.apiUrl + routes.adminRevokeCertificate(device.serial.toUpperCase()), server.rootPem, { reason: 'superseded' }, auth);
    expect(bySerial.status).toBe(200);
    expect(bySerial.json()).toMatchObject({ deviceId: device.deviceId, outcome: 'revoked', serials: [device.serial] });
    const cases = {
      unknownDevice: await postJson(server.apiUrl + routes.adminRevokeDevice(randomDeviceId('nobody')), server.rootPem, {}, auth),
      unknownSerial: await postJson(server.apiUrl + routes.adminRevokeCertificate('0123456789abcdef'), server.rootPem, {}, auth),
      badReason: await postJson(server.apiUrl + routes.adminRevokeDevice(device.deviceId), server.rootPem, { reason: 'because' }, auth),
      holdNotOffered: await postJson(server.apiUrl + routes.adminRevokeDevice(device.deviceId), server.rootPem, { reason: 'certificateHold' }, auth),
      extraField: await postJson(server.apiUrl + routes.adminRevokeDevice(device.deviceId), server.rootPem, { reason: 'unspecified', x: 1 }, auth),
      badDeviceId: await postJson(server.apiUrl + '/v1/admin/devices/Bad%2FId/revoke', server.rootPem, {}, auth),
      badSerial: await postJson(server.apiUrl + routes.adminRevokeCertificate('xyz'), server.rootPem, {}, auth),
      noBodyIsUnspecified: await httpsRequest(server.apiUrl + routes.adminRevokeDevice(randomDeviceId('nobody')), server.rootPem, { method: 'POST', headers: auth }),
      noToken: await postJson(server.apiUrl + routes.adminRevokeDevice(device.deviceId), server.rootPem, {}),
    };
    const statuses = Object.fromEntries(Object.entries(cases).map(([k, v]) => [k, v.status]));
    expect(statuses).toEqual({
      unknownDevice: 404,
      unknownSerial: 404,
      badReason: 400,
      holdNotOffered: 400,
      extraField: 400,
      badDeviceId: 400,
      badSerial: 400,
      noBodyIsUnspecified: 404,
      noToken: 401,
    });
    for (const res of Object.values(cases)) expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });
});
