import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { problemType, routes } from '@enrolld/protocol';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { opensslVerifyClientCert } from '../support/openssl.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

describe('POST /v1/enroll over HTTPS on Postgres', () => {
  let server: TestServer;
  const enrollUrl = () => server.apiUrl + routes.enroll;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('issues a certificate for the token\'s device that passes openssl verify -x509_strict -purpose sslclient', async () => {
    const deviceId = uniqueDeviceId();
    const token = await server.createToken(deviceId);
    const csr = await makeCsr({ cn: deviceId });
    const res = await postJson(enrollUrl(), server.rootPem, { token, csr: csr.pem });
    expect(res.status).toBe(201);
    const body = res.json();
    expect(body.deviceId).toBe(deviceId);
    expect(body.serial).toMatch(/^[0-9a-f]+$/);
    expect(body.chain).toBe(server.chainPem);
    const cert = new X509Certificate(body.certificate);
    expect(cert.subject).toBe(`CN=${deviceId}`);
    expect(cert.subjectAltName).toBe(`URI:urn:enrolld:device:${deviceId}`);
    expect(cert.serialNumber.toLowerCase()).toBe(body.serial);
    expect(new Date(body.notAfter).getTime()).toBe(new Date(cert.validTo).getTime());
    await expect(opensslVerifyClientCert(body.certificate, server.chainPem)).resolves.toBeUndefined();
  });

  it('TOK-01: a spent token never yields a second certificate, after replay or restart-equivalent new CSRs', async () => {
    const deviceId = uniqueDeviceId();
    const token = await server.createToken(deviceId);
    const first = await postJson(enrollUrl(), server.rootPem, { token, csr: (await makeCsr({ cn: deviceId })).pem });
    expect(first.status).toBe(201);
    for (let i = 0; i < 3; i++) {
      const again = await postJson(enrollUrl(), server.rootPem, { token, csr: (await makeCsr({ cn: deviceId })).pem });
      expect(again.status).toBe(409);
    }
    // After the retry window the spent token is indistinguishable from an unknown one.
    await server.db.pool.query(`UPDATE bootstrap_tokens SET used_at = now() - interval '2 hours' WHERE device_id = $1`, [deviceId]);
    const late = await postJson(enrollUrl(), server.rootPem, { token, csr: (await makeCsr({ cn: deviceId })).pem });
    expect(late.status).toBe(401);
    const { rows } = await server.db.pool.query('SELECT count(*)::int AS n FROM certificates WHERE device_id = $1', [deviceId]);
    expect(rows[0].n).toBe(1);
  });

  it('TOK-07: the same token and CSR retried after a lost response return the same certificate', async () => {
    const deviceId = uniqueDeviceId();
    const token = await server.createToken(deviceId);
    const csr = await makeCsr({ cn: deviceId });
    const first = await postJson(enrollUrl(), server.rootPem, { token, csr: csr.pem });
    const retry = await postJson(enrollUrl(), server.rootPem, { token, csr: csr.pem });
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.headers['enrolld-replayed']).toBe('true');
    expect(retry.json().serial).toBe(first.json().serial);
    expect(retry.json().certificate).toBe(first.json().certificate);
    const other = await postJson(enrollUrl(), server.rootPem, { token, csr: (await makeCsr({ cn: deviceId })).pem });
    expect(other.status).toBe(409);
    expect(other.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(other.json().type).toBe(problemType('conflict'));
  });

  it('FLT-03 recovery: an intent whose signature was never stored is completed by the retry, with the recorded serial', async () => {
    const deviceId = uniqueDeviceId();
    const token = await server.createToken(deviceId);
    const csr = await makeCsr({ cn: deviceId });
    const first = (await postJson(enrollUrl(), server.rootPem, { token, csr: csr.pem })).json();
    // As if the final write had failed after signing: the row (serial + TBS) exists, the certificate does not.
    await server.db.pool.query(
      `UPDATE certificates SET der = NULL, issued_at = NULL, created_at = now() - interval '1 minute' WHERE serial = $1`,
      [first.serial],
    );
    const retry = await postJson(enrollUrl(), server.rootPem, { token, csr: csr.pem });
    expect(retry.status).toBe(201);
    expect(retry.json().serial).toBe(first.serial);
    await expect(opensslVerifyClientCert(retry.json().certificate, server.chainPem)).resolves.toBeUndefined();
    const { rows } = await server.db.pool.query('SELECT count(*)::int AS n FROM certificates WHERE device_id = $1', [deviceId]);
    expect(rows[0].n).toBe(1);
  });

  it('answers unknown, used and expired tokens with one identical 401', async () => {
    const expiredDevice = uniqueDeviceId();
    const expired = await server.createToken(expiredDevice);
    await server.db.pool.query(`UPDATE bootstrap_tokens SET expires_at = now() - interval '1 second' WHERE device_id = $1`, [expiredDevice]);
    const usedDevice = uniqueDeviceId();
    const used = await server.createToken(usedDevice);
    expect((await postJson(enrollUrl(), server.rootPem, { token: used, csr: (await makeCsr({ cn: usedDevice })).pem })).status).toBe(201);
    await server.db.pool.query(`UPDATE bootstrap_tokens SET used_at = now() - interval '2 hours' WHERE device_id = $1`, [usedDevice]);

    const bodies = [];
    for (const [token, cn] of [['ebt_unknown-token-value', 'x'], [expired, expiredDevice], [used, usedDevice]] as const) {
      const res = await postJson(enrollUrl(), server.rootPem, { token, csr: (await makeCsr({ cn })).pem });
      expect(res.status).toBe(401);
      const { requestId: _ignored, ...body } = res.json();
      bodies.push(body);
    }
    expect(bodies[1]).toEqual(bodies[0]);
    expect(bodies[2]).toEqual(bodies[0]);
  });

  it('TOK-03: the database clock decides expiry: 1 s before is accepted, 1 s after is refused', async () => {
    const before = uniqueDeviceId();
    const after = uniqueDeviceId();
    const tBefore = await server.createToken(before);
    const tAfter = await server.createToken(after);
    await server.db.pool.query(`UPDATE bootstrap_tokens SET expires_at = now() + interval '2 seconds' WHERE device_id = $1`, [before]);
    await server.db.pool.query(`UPDATE bootstrap_tokens SET expires_at = now() - interval '1 second' WHERE device_id = $1`, [after]);
    expect((await postJson(enrollUrl(), server.rootPem, { token: tBefore, csr: (await makeCsr({ cn: before })).pem })).status).toBe(201);
    expect((await postJson(enrollUrl(), server.rootPem, { token: tAfter, csr: (await makeCsr({ cn: after })).pem })).status).toBe(401);
  });

  it('refuses a CSR that names another device without spending the token (CSR-06)', async () => {
    const deviceId = uniqueDeviceId();
    const token = await server.createToken(deviceId);
    const res = await postJson(enrollUrl(), server.rootPem, { token, csr: (await makeCsr({ cn: 'someone-else' })).pem });
    expect(res.status).toBe(400);
    expect(res.json().type).toBe(problemType('identity-mismatch'));
    const ok = await postJson(enrollUrl(), server.rootPem, { token, csr: (await makeCsr({ cn: deviceId })).pem });
    expect(ok.status).toBe(201);
  });

  describe('bad input gets a problem+json 4xx, never a 5xx', () => {
    it('413 for a body over 16 KiB, before parsing', async () => {
      const res = await httpsRequest(enrollUrl(), server.rootPem, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: 'x', csr: 'A'.repeat(17 * 1024) }),
      });
      expect(res.status).toBe(413);
      expect(res.json().type).toBe(problemType('payload-too-large'));
    });
    it('415 for a wrong Content-Type', async () => {
      const res = await httpsRequest(enrollUrl(), server.rootPem, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
      expect(res.status).toBe(415);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    });
    it.each([
      ['malformed JSON', '{"token": '],
      ['missing csr', JSON.stringify({ token: 'ebt_x' })],
      ['csr not a string', JSON.stringify({ token: 'ebt_x', csr: 42 })],
      ['garbage csr', JSON.stringify({ token: 'ebt_x', csr: '-----BEGIN CERTIFICATE REQUEST-----\nnot base64!\n-----END CERTIFICATE REQUEST-----' })],
      ['array body', '[]'],
    ])('400 for %s', async (_name, body) => {
      const res = await httpsRequest(enrollUrl(), server.rootPem, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(res.status).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(typeof res.json().detail).toBe('string');
    });
    it('404 problem for an unknown route', async () => {
      const res = await httpsRequest(server.apiUrl + '/v1/nope', server.rootPem);
      expect(res.status).toBe(404);
      expect(res.json().type).toBe(problemType('not-found'));
    });
  });

  it('serves the CA chain, health and Prometheus metrics with enrollment outcomes', async () => {
    const ca = await httpsRequest(server.apiUrl + routes.ca, server.rootPem);
    expect(ca.status).toBe(200);
    expect(ca.text).toBe(server.chainPem);
    expect((await httpsRequest(server.apiUrl + routes.healthz, server.rootPem)).json()).toEqual({ status: 'alive' });
    expect((await httpsRequest(server.apiUrl + routes.readyz, server.rootPem)).json()).toEqual({ status: 'ready', checks: { database: true, revocationState: true, clusterBus: true } });
    const metrics = await httpsRequest(server.apiUrl + routes.metrics, server.rootPem);
    expect(metrics.text).toMatch(/enrolld_enrollments_total\{outcome="issued"\} [1-9]/);
    expect(metrics.text).toMatch(/enrolld_enrollment_duration_seconds_bucket/);
  });
});
