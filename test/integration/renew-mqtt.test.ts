// Rotation over MQTT and lineage, on the real composition (API + broker in one process): renewal on
// devices/<id>/cert/renew → …/accepted|rejected; ROT-01 overlap; ROT-02 the predecessor's live session is cut when the
// successor first connects; keyCompromise takes the whole lineage.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { createPgRenewalStore, createPgRotationListener } from '@enrolld/db';
import { pino } from 'pino';
import { systemClock } from '@enrolld/core/clock.js';
import { createLineage } from '@enrolld/core/renewal/lineage.js';
import { problemType, routes } from '@enrolld/protocol';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { connectWith, mustConnect, renewOverMqtt, renewTopics } from '../support/renew-mqtt.js';
import { credsFrom, enrollDevice, renewRest } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';
import { startSecondBroker } from '../support/renew-broker.js';
import { refusalOf } from '../support/refusal.js';
import { waitFor } from '../support/wait-for.js';

describe('rotation over MQTT and lineage', () => {
  let server: TestServer;
  let port: number;

  beforeAll(async () => {
    server = await startTestServer({ env: { JOBS: 'off' } });
    port = server.running.mqttsPort;
  });
  afterAll(async () => {
    await server.stop();
  });

  const certStatus = async (serial: string) =>
    (await server.db.pool.query<{ revoked_at: Date | null; revocation_reason: number | null }>('SELECT revoked_at, revocation_reason FROM certificates WHERE serial = $1', [serial])).rows[0]!;

  it('renews over MQTT: the CSR on cert/renew, the REST shape on cert/renew/accepted', async () => {
    const deviceId = uniqueDeviceId('mqtt');
    const current = await enrollDevice(server, deviceId);
    const session = await mustConnect(port, server.chainPem, current, renewTopics(deviceId));
    const csr = await makeCsr({ cn: deviceId });
    const answer = await renewOverMqtt(session, deviceId, csr.pem);
    expect(answer.accepted).toBe(true);
    if (!answer.accepted) return;
    expect(answer.response.deviceId).toBe(deviceId);
    expect(answer.response.chain).toBe(server.chainPem);
    const cert = new X509Certificate(answer.response.certificate);
    expect(cert.checkPrivateKey(csr.privateKey)).toBe(true);
    const { rows } = await server.db.pool.query('SELECT predecessor_serial FROM certificates WHERE serial = $1', [answer.response.serial]);
    expect(rows[0].predecessor_serial).toBe(current.serial);

    // Refusals come back as RFC 9457 problems on …/rejected, and the session stays up.
    const again = await renewOverMqtt(session, deviceId, (await makeCsr({ cn: deviceId })).pem);
    expect(again).toMatchObject({ accepted: false, problem: { type: problemType('conflict'), status: 409 } });
    const other = await renewOverMqtt(session, deviceId, (await makeCsr({ cn: uniqueDeviceId('other') })).pem);
    expect(other).toMatchObject({ accepted: false, problem: { type: problemType('identity-mismatch'), status: 400 } });
    const garbage = await renewOverMqtt(session, deviceId, 'not a csr');
    expect(garbage).toMatchObject({ accepted: false, problem: { type: problemType('bad-csr'), status: 400 } });
    expect(session.client.connected).toBe(true);
    await session.end();
  });

  it('ROT-01 + ROT-02: both certificates work during the overlap; the successor\'s first CONNECT supersedes the predecessor', async () => {
    const deviceId = uniqueDeviceId('rot02');
    const current = await enrollDevice(server, deviceId);
    const oldSession = await mustConnect(port, server.chainPem, current);
    const csr = await makeCsr({ cn: deviceId });
    const renewed = await renewRest(server, current, csr.pem);
    expect(renewed.status).toBe(201);
    const issuedAt = Date.now();
    const next = credsFrom(renewed.json(), csr.privateKey);

    // Overlap: the old session stays up (a round trip through the broker after the renewal answered proves it), and
    // the old certificate can still connect.
    const echoTopic = `devices/${deviceId}/echo`;
    await oldSession.client.subscribeAsync(echoTopic, { qos: 1 });
    await oldSession.client.publishAsync(echoTopic, 'overlap', { qos: 1 });
    await waitFor(() => oldSession.messages.some((m) => m.topic === echoTopic), 3000, 'the echo on the old session');
    expect(oldSession.client.connected).toBe(true);
    expect((await certStatus(current.serial)).revoked_at).toBeNull();
    await oldSession.end();
    const oldAgain = await mustConnect(port, server.chainPem, current);
    await oldAgain.end();

    // First use of the successor retires the predecessor: revoked as superseded, refused at its next CONNECT.
    const successor = await mustConnect(port, server.chainPem, next);
    const connackAt = Date.now();
    await waitFor(async () => (await certStatus(current.serial)).revoked_at !== null, 5000, 'the predecessor revoked');
    const status = await certStatus(current.serial);
    expect(status.revocation_reason).toBe(4); // RFC 5280 superseded
    // Refused at TLS (the new CRL is in the broker's context) or at CONNECT (CONNACK 5), whichever sees it first.
    expect(['tls-closed', 'connack 5']).toContain(refusalOf(await connectWith(port, server.chainPem, current)));
    expect(successor.client.connected).toBe(true);

    const detail = (await httpsRequest(server.apiUrl + routes.adminDevice(deviceId), server.rootPem, { headers: { authorization: `Bearer ${server.adminToken}` } })).json();
    expect(detail.certificates).toEqual([
      expect.objectContaining({ serial: current.serial, status: 'revoked', revocationReason: 'superseded' }),
      expect.objectContaining({ serial: next.serial, status: 'active', predecessorSerial: current.serial }),
    ]);
    process.stdout.write(`${JSON.stringify({ id: 'ROT-01', overlapMs: connackAt - issuedAt, connackToRevokedCommitMs: status.revoked_at!.getTime() - connackAt })}\n`);
    await successor.end();
  });

  it('ROT-02: the predecessor\'s live session on another broker node is cut when the successor connects (no takeover involved)', async () => {
    // Same clientId on one broker would be a session takeover (MQTT-3.1.4-2), which closes the old connection anyway.
    // On a second broker node there is no takeover: only the supersede revocation (NOTIFY fan-out) can cut it.
    const other = await startSecondBroker({ home: server.home, databaseUrl: server.db.url });
    try {
      const trials: number[] = [];
      for (let i = 0; i < 10; i++) {
        const deviceId = uniqueDeviceId('rot02n');
        const current = await enrollDevice(server, deviceId);
        const csr = await makeCsr({ cn: deviceId });
        const next = credsFrom((await renewRest(server, current, csr.pem)).json(), csr.privateKey);
        const old = await mustConnect(other.port, server.chainPem, current);
        const successor = await mustConnect(port, server.chainPem, next);
        const cutAt = await old.closed;
        trials.push(cutAt - successor.connectedAt);
        // The second node learns the revocation and the CRL from two notifications; either refuses the reconnect.
        expect(['tls-closed', 'connack 5']).toContain(refusalOf(await connectWith(other.port, server.chainPem, current)));
        await successor.end();
      }
      trials.sort((a, b) => a - b);
      const pick = (q: number) => +trials[Math.min(trials.length - 1, Math.floor(q * trials.length))]!.toFixed(1);
      process.stdout.write(`${JSON.stringify({ id: 'ROT-02', trigger: 'first-connect', trials: trials.length, connectToCutMs: { p50: pick(0.5), max: pick(1) } })}\n`);
      expect(trials[trials.length - 1]).toBeLessThan(2000);
    } finally {
      await other.stop();
    }
  });

  it('a renewal is announced on the rotation feed (NOTIFY), so lineage in other processes learns it', async () => {
    const heard: Array<{ successorSerial: string; predecessorSerial: string }> = [];
    const listener = createPgRotationListener({ connectionString: server.db.url });
    await listener.start({ onHint: () => undefined, onRenewal: (r) => heard.push(r), onConnection: () => undefined });
    try {
      const current = await enrollDevice(server, uniqueDeviceId('feed'));
      const renewed = await renewRest(server, current, (await makeCsr({ cn: current.deviceId })).pem);
      expect(renewed.status).toBe(201);
      await waitFor(() => heard.some((r) => r.successorSerial === renewed.json().serial));
      expect(heard.find((r) => r.successorSerial === renewed.json().serial)).toMatchObject({ predecessorSerial: current.serial, deviceId: current.deviceId });
    } finally {
      await listener.stop();
    }
  });

  it('revokeLineage: a compromised certificate takes its descendants with it, not its ancestors', async () => {
    const lineage = createLineage({ store: createPgRenewalStore(server.db.pool), revoker: server.running.useCases.revocation, clock: systemClock, logger: pino({ level: 'silent' }), graceSeconds: 3600 });
    const deviceId = uniqueDeviceId('lineage');
    const first = await enrollDevice(server, deviceId);
    const csr2 = await makeCsr({ cn: deviceId });
    const second = credsFrom((await renewRest(server, first, csr2.pem)).json(), csr2.privateKey);
    const csr3 = await makeCsr({ cn: deviceId });
    const third = credsFrom((await renewRest(server, second, csr3.pem)).json(), csr3.privateKey);
    const revoked = await lineage.revokeLineage(second.serial, { reason: 'keyCompromise', actor: 'test' });
    expect(revoked).toEqual([second.serial, third.serial]);
    expect((await certStatus(first.serial)).revoked_at).toBeNull();
    expect((await certStatus(third.serial)).revocation_reason).toBe(1);
  });

  it('revoking a device for keyCompromise revokes its whole lineage and cuts the live session', async () => {
    const deviceId = uniqueDeviceId('kc');
    const first = await enrollDevice(server, deviceId);
    const csr2 = await makeCsr({ cn: deviceId });
    const second = credsFrom((await renewRest(server, first, csr2.pem)).json(), csr2.privateKey);
    const csr3 = await makeCsr({ cn: deviceId });
    const third = credsFrom((await renewRest(server, second, csr3.pem)).json(), csr3.privateKey);
    const live = await mustConnect(port, server.chainPem, third);
    await waitFor(async () => (await certStatus(second.serial)).revoked_at !== null); // superseded by the CONNECT
    const res = await postJson(server.apiUrl + routes.adminRevokeDevice(deviceId), server.rootPem, { reason: 'keyCompromise' }, { authorization: `Bearer ${server.adminToken}` });
    expect(res.status).toBe(200);
    await live.closed;
    const { rows } = await server.db.pool.query('SELECT serial, revocation_reason FROM certificates WHERE device_id = $1 ORDER BY created_at', [deviceId]);
    // The third certificate's CONNECT had already superseded the second (reason 4); the revocation takes the rest.
    expect(rows).toEqual([
      { serial: first.serial, revocation_reason: 1 },
      { serial: second.serial, revocation_reason: 4 },
      { serial: third.serial, revocation_reason: 1 },
    ]);
    const renewAfter = await renewRest(server, third, (await makeCsr({ cn: deviceId })).pem);
    expect(renewAfter.status).toBe(403);
  });
});
