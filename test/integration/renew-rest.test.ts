// Renewal over REST (POST /v1/renew, mTLS with the current certificate) on the real composition: ROT-01, ROT-03,
// ROT-04, ROT-05, ROT-06, and the expired-certificate policy.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { problemType, routes, type EnrollResponse } from '@enrolld/protocol';
import { buildCsr, generateTestKey, makeCsr } from '../support/csr-factory.js';
import { opensslVerifyClientCert } from '../support/openssl.js';
import { countCertificates, credsFrom, enrollDevice, issueFromServerCa, renewRest } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';
import { createRootCa, createIntermediateCa } from '../support/test-pki.js';
import { httpsRequest, postJson } from '../support/http.js';

describe('POST /v1/renew', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ env: { JOBS: 'off' } });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('ROT-01: renews with a new key; new serial, same identity, lineage recorded; a lost-response retry gets the same cert', async () => {
    const deviceId = uniqueDeviceId('rot01');
    const current = await enrollDevice(server, deviceId);
    const csr = await makeCsr({ cn: deviceId, sans: [{ type: 'uri', value: `urn:enrolld:device:${deviceId}` }] });
    const res = await renewRest(server, current, csr.pem);
    expect(res.status).toBe(201);
    const body = res.json<EnrollResponse>();
    expect(body.deviceId).toBe(deviceId);
    expect(body.serial).not.toBe(current.serial);
    expect(body.chain).toBe(server.chainPem);
    const cert = new X509Certificate(body.certificate);
    expect(cert.subject).toBe(`CN=${deviceId}`);
    expect(cert.subjectAltName).toBe(`URI:urn:enrolld:device:${deviceId}`);
    expect(cert.checkPrivateKey(csr.privateKey)).toBe(true);
    await expect(opensslVerifyClientCert(body.certificate, server.chainPem)).resolves.toBeUndefined();

    const row = await server.db.pool.query('SELECT predecessor_serial FROM certificates WHERE serial = $1', [body.serial]);
    expect(row.rows[0].predecessor_serial).toBe(current.serial);
    // The admin view shows the lineage with states: the predecessor stays active until the successor is used.
    const detail = (await httpsRequest(server.apiUrl + routes.adminDevice(deviceId), server.rootPem, { headers: { authorization: `Bearer ${server.adminToken}` } })).json();
    expect(detail.certificates).toEqual([
      expect.objectContaining({ serial: current.serial, status: 'active', predecessorSerial: null }),
      expect.objectContaining({ serial: body.serial, status: 'active', predecessorSerial: current.serial }),
    ]);

    // TOK-07 for renewals: the same CSR again returns the same certificate.
    const retry = await renewRest(server, current, csr.pem);
    expect(retry.status).toBe(201);
    expect(retry.headers['enrolld-replayed']).toBe('true');
    expect(retry.json<EnrollResponse>().certificate).toBe(body.certificate);

    // The successor can renew in turn (a lineage of three).
    const next = await renewRest(server, credsFrom(body, csr.privateKey), (await makeCsr({ cn: deviceId })).pem);
    expect(next.status).toBe(201);
    expect(await countCertificates(server, deviceId)).toBe(3);
  });

  it('one certificate has one successor: a different CSR after a renewal is 409 naming the successor', async () => {
    const deviceId = uniqueDeviceId('succ');
    const current = await enrollDevice(server, deviceId);
    const first = await renewRest(server, current, (await makeCsr({ cn: deviceId })).pem);
    expect(first.status).toBe(201);
    const second = await renewRest(server, current, (await makeCsr({ cn: deviceId })).pem);
    expect(second.status).toBe(409);
    expect(second.json()).toMatchObject({ type: problemType('conflict'), serial: current.serial, successorSerial: first.json().serial });
    expect(await countCertificates(server, deviceId)).toBe(2);
  });

  it('a new key is required: the current key, or any key already certified, is a clear 400', async () => {
    const deviceId = uniqueDeviceId('key');
    const current = await enrollDevice(server, deviceId);
    const sameKey = await renewRest(server, current, (await makeCsr({ cn: deviceId, key: current.privateKey })).pem);
    expect(sameKey.status).toBe(400);
    expect(sameKey.json()).toMatchObject({ type: problemType('bad-key') });
    expect(sameKey.json().detail).toMatch(/new key/);

    const other = await enrollDevice(server, uniqueDeviceId('key-other'));
    const reused = await renewRest(server, current, (await makeCsr({ cn: deviceId, key: other.privateKey })).pem);
    expect(reused.status).toBe(400);
    expect(reused.json()).toMatchObject({ type: problemType('bad-key') });
    expect(await countCertificates(server, deviceId)).toBe(1);
  });

  it('ROT-03: expired, not-yet-valid, revoked (also just now) and decommissioned certificates are refused', async () => {
    const now = Date.now();
    const expired = await issueFromServerCa(server, uniqueDeviceId('exp'), { notBefore: new Date(now - 7200_000), notAfter: new Date(now - 60_000) });
    const r1 = await renewRest(server, expired, (await makeCsr({ cn: expired.deviceId })).pem);
    expect(r1.status).toBe(403);
    expect(r1.json()).toMatchObject({ type: problemType('expired'), policy: 'refuse', recovery: 'operator' });

    const future = await issueFromServerCa(server, uniqueDeviceId('nyv'), { notBefore: new Date(now + 3600_000), notAfter: new Date(now + 7200_000) });
    const r2 = await renewRest(server, future, (await makeCsr({ cn: future.deviceId })).pem);
    expect(r2.status).toBe(403);
    expect(r2.json()).toMatchObject({ type: problemType('forbidden') });
    expect(r2.json().detail).toMatch(/not valid before/);

    // Revoked a moment ago, then renewed at once: the store is the authority, not a broker's view.
    const revoked = await enrollDevice(server, uniqueDeviceId('rev'));
    const csr = await makeCsr({ cn: revoked.deviceId });
    const revoke = await postJson(server.apiUrl + routes.adminRevokeDevice(revoked.deviceId), server.rootPem, { reason: 'keyCompromise' }, { authorization: `Bearer ${server.adminToken}` });
    expect(revoke.status).toBe(200);
    const r3 = await renewRest(server, revoked, csr.pem);
    expect(r3.status).toBe(403);
    expect(r3.json()).toMatchObject({ type: problemType('revoked') });

    const decommissioned = await enrollDevice(server, uniqueDeviceId('dec'));
    await postJson(server.apiUrl + routes.adminRevokeDevice(decommissioned.deviceId), server.rootPem, { reason: 'cessationOfOperation' }, { authorization: `Bearer ${server.adminToken}` });
    const r4 = await renewRest(server, decommissioned, (await makeCsr({ cn: decommissioned.deviceId })).pem);
    expect(r4.status).toBe(403);

    for (const c of [expired, future, revoked, decommissioned]) expect(await countCertificates(server, c.deviceId)).toBe(1);
  });

  it('ROT-03 racing: a device revocation and 10 renewals at once never leave a live certificate (5 rounds)', async () => {
    for (let round = 0; round < 5; round++) {
      const device = await enrollDevice(server, uniqueDeviceId('race'));
      const csr = await makeCsr({ cn: device.deviceId });
      const [, ...renewals] = await Promise.all([
        postJson(server.apiUrl + routes.adminRevokeDevice(device.deviceId), server.rootPem, { reason: 'keyCompromise' }, { authorization: `Bearer ${server.adminToken}` }),
        ...Array.from({ length: 10 }, () => renewRest(server, device, csr.pem)),
      ]);
      for (const r of renewals) expect([201, 403]).toContain(r.status);
      // A renewal that committed before the revocation is revoked with it (a device revoke takes every live
      // certificate, intents included); one that came after sees the revoked row under its lock and is refused.
      const live = await server.db.pool.query('SELECT count(*)::int AS n FROM certificates WHERE device_id = $1 AND revoked_at IS NULL', [device.deviceId]);
      expect(live.rows[0].n).toBe(0);
      expect(await countCertificates(server, device.deviceId)).toBeLessThanOrEqual(2);
    }
  });

  it('ROT-04: a CSR naming another device, another SAN, extra subject fields or no subject is refused', async () => {
    const deviceId = uniqueDeviceId('rot04');
    const other = uniqueDeviceId('rot04-other');
    const current = await enrollDevice(server, deviceId);
    const cases: Array<[string, Parameters<typeof makeCsr>[0]]> = [
      ['CN of another device', { cn: other }],
      ['SAN of another device', { cn: deviceId, sans: [{ type: 'uri', value: `urn:enrolld:device:${other}` }] }],
      ['CN and SAN of another device', { cn: other, sans: [{ type: 'uri', value: `urn:enrolld:device:${other}` }] }],
      ['a DNS SAN', { cn: deviceId, sans: [{ type: 'dns', value: 'evil.example' }] }],
      ['no subject', {}],
    ];
    for (const [what, spec] of cases) {
      const res = await renewRest(server, current, (await makeCsr(spec)).pem);
      expect({ what, status: res.status, type: res.json().type }).toEqual({ what, status: 400, type: problemType('identity-mismatch') });
    }
    const extra = buildCsr({ cn: deviceId, subjectAttributes: [{ oid: '2.5.4.10', value: 'Other Org' }] });
    const r = await renewRest(server, current, extra.pem);
    expect(r.status).toBe(400);
    expect(r.json().type).toBe(problemType('identity-mismatch'));
    // Decision (documented): a CSR with CN=<id> and no SAN is accepted; the successor's SAN comes from the record.
    const noSan = await renewRest(server, current, (await makeCsr({ cn: deviceId })).pem);
    expect(noSan.status).toBe(201);
    expect(new X509Certificate(noSan.json().certificate).subjectAltName).toBe(`URI:urn:enrolld:device:${deviceId}`);
    expect(await countCertificates(server, deviceId)).toBe(2);
  });

  it('ROT-05: 20 parallel renewals with one certificate make exactly one successor', async () => {
    // Different CSRs (each request its own new key): one 201, the rest 409.
    const a = await enrollDevice(server, uniqueDeviceId('rot05a'));
    const different = await Promise.all(Array.from({ length: 20 }, async () => renewRest(server, a, (await makeCsr({ cn: a.deviceId })).pem)));
    expect(different.filter((r) => r.status === 201)).toHaveLength(1);
    expect(different.filter((r) => r.status === 409)).toHaveLength(19);
    expect(await countCertificates(server, a.deviceId)).toBe(2);

    // The same CSR 20 times (a retrying client): all get the same certificate.
    const b = await enrollDevice(server, uniqueDeviceId('rot05b'));
    const csr = await makeCsr({ cn: b.deviceId });
    const same = await Promise.all(Array.from({ length: 20 }, () => renewRest(server, b, csr.pem)));
    expect(same.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(new Set(same.map((r) => r.json().serial)).size).toBe(1);
    expect(await countCertificates(server, b.deviceId)).toBe(2);
  });

  it('ROT-06: no client cert, a bootstrap token instead, a cert from another CA, device A with a CSR for B, a CSR with a foreign signature', async () => {
    const deviceId = uniqueDeviceId('rot06');
    const current = await enrollDevice(server, deviceId);
    const csrPem = (await makeCsr({ cn: deviceId })).pem;

    const noCert = await renewRest(server, undefined, csrPem);
    expect(noCert.status).toBe(401);
    expect(noCert.json().type).toBe(problemType('unauthorized'));

    const token = await server.createToken(uniqueDeviceId('rot06-tok'));
    const withToken = await postJson(server.apiUrl + routes.renew, server.rootPem, { csr: csrPem, token }, { authorization: `Bearer ${token}` });
    expect(withToken.status).toBe(401);

    // Same subject, SAN and serial shape, from a CA the server does not run.
    const root = await createRootCa('Other Root');
    const issuing = await createIntermediateCa(root, 'Other Issuing');
    const foreign = await issuing.issue({ subject: `CN=${deviceId}`, sanUris: [`urn:enrolld:device:${deviceId}`], serial: current.serial });
    const fromOtherCa = await renewRest(server, { clientChainPem: foreign.certPem + issuing.certPem, keyPem: foreign.keyPem }, csrPem);
    expect(fromOtherCa.status).toBe(401);
    expect(fromOtherCa.json().detail).toMatch(/not issued by this CA/);

    const b = uniqueDeviceId('rot06-b');
    const forB = await renewRest(server, current, (await makeCsr({ cn: b, sans: [{ type: 'uri', value: `urn:enrolld:device:${b}` }] })).pem);
    expect(forB.status).toBe(400);
    expect(forB.json().type).toBe(problemType('identity-mismatch'));

    // The CSR claims one key but is signed by another (its signature does not verify).
    const claimed = generateTestKey('P-256');
    const signer = generateTestKey('P-256');
    const mismatched = buildCsr({ cn: deviceId, key: signer.privateKey, spkiDer: claimed.spkiDer });
    const badSig = await renewRest(server, current, mismatched.pem);
    expect(badSig.status).toBe(400);
    expect(badSig.json().type).toBe(problemType('bad-csr'));

    expect(await countCertificates(server, deviceId)).toBe(1);
  });
});

describe('expired-certificate policy', () => {
  it('grace: renews within the grace window after expiry and refuses after it; token: points to re-enrollment', async () => {
    const grace = await startTestServer({ env: { JOBS: 'off', RENEW_EXPIRED: 'grace', RENEW_EXPIRED_GRACE: '1h' } });
    try {
      const now = Date.now();
      const recent = await issueFromServerCa(grace, uniqueDeviceId('grace'), { notBefore: new Date(now - 7200_000), notAfter: new Date(now - 600_000) });
      const ok = await renewRest(grace, recent, (await makeCsr({ cn: recent.deviceId })).pem);
      expect(ok.status).toBe(201);
      const old = await issueFromServerCa(grace, uniqueDeviceId('grace-old'), { notBefore: new Date(now - 4 * 3600_000), notAfter: new Date(now - 2 * 3600_000) });
      const late = await renewRest(grace, old, (await makeCsr({ cn: old.deviceId })).pem);
      expect(late.status).toBe(403);
      expect(late.json()).toMatchObject({ type: problemType('expired'), policy: 'grace', recovery: 'operator' });
      expect(late.json().graceEndsAt).toBeDefined();
    } finally {
      await grace.stop();
    }

    const tokenPolicy = await startTestServer({ env: { JOBS: 'off', RENEW_EXPIRED: 'token' } });
    try {
      const now = Date.now();
      const expired = await issueFromServerCa(tokenPolicy, uniqueDeviceId('tok'), { notBefore: new Date(now - 7200_000), notAfter: new Date(now - 60_000) });
      const refused = await renewRest(tokenPolicy, expired, (await makeCsr({ cn: expired.deviceId })).pem);
      expect(refused.status).toBe(403);
      expect(refused.json()).toMatchObject({ type: problemType('expired'), policy: 'token', recovery: 'bootstrap-token', enroll: routes.enroll });
      // The way back works: a new bootstrap token for the same device enrolls it again.
      const again = await enrollDevice(tokenPolicy, expired.deviceId);
      expect(again.deviceId).toBe(expired.deviceId);
    } finally {
      await tokenPolicy.stop();
    }
  });
});
