// EST (RFC 7030 + RFC 8951) on the API port, driven by a Node client at the byte level: cacerts, csrattrs,
// simpleenroll (Basic / Bearer), simplereenroll (mTLS), RFC 7030 status use, Content-Length on every reply, and the
// proof-of-possession linking matrix (CSR-12) on TLS 1.2 (tls-unique) and TLS 1.3 (tls-exporter).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { problemType, routes } from '@enrolld/protocol';
import { readChildren, readTlv, decodeOid } from '@enrolld/core/ca/der.js';
import { certsOnly, certsOnlyWithPkijs } from '../../server/src/http/est/pkcs7.js';
import { buildCsr, makeCsr } from '../support/csr-factory.js';
import { certificatesInPkcs7, challengePasswordAttribute, decodeBase64Body, openTls, requestOnSocket } from '../support/est-support.js';
import { httpsRequest } from '../support/http.js';
import { countCertificates, enrollDevice, renewEst, type DeviceCreds } from '../support/renew-support.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

const pemCerts = (pem: string) => (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p).raw);
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function simpleEnroll(server: TestServer, authorization: string | undefined, body: string | Buffer, contentType = 'application/pkcs10') {
  return httpsRequest(server.apiUrl + routes.est.simpleenroll, server.rootPem, {
    method: 'POST',
    headers: { 'content-type': contentType, 'content-transfer-encoding': 'base64', ...(authorization ? { authorization } : {}) },
    body,
  });
}

describe('EST server', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ env: { JOBS: 'off' } });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('GET cacerts: a PKCS#7 certs-only with the issuing CA and the root, base64, with Content-Length', async () => {
    const res = await httpsRequest(server.apiUrl + routes.est.cacerts, server.rootPem);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/pkcs7-mime/);
    expect(res.headers['content-transfer-encoding']).toBe('base64');
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.text));
    expect(res.headers['transfer-encoding']).toBeUndefined();
    const certs = certificatesInPkcs7(decodeBase64Body(res.text));
    expect(certs).toEqual(pemCerts(server.chainPem));
    // The per-request writer produces exactly what pkijs produces for the same certificates.
    expect(certsOnly(certs).equals(certsOnlyWithPkijs(certs))).toBe(true);
  });

  it('GET csrattrs: an EC P-256 key and ecdsa-with-SHA256 (RFC 7030 §4.5.2)', async () => {
    const res = await httpsRequest(server.apiUrl + routes.est.csrattrs, server.rootPem);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/csrattrs/);
    const der = decodeBase64Body(res.text);
    const top = readTlv(der, 0, der.length);
    const [attr, oid, extra] = readChildren(der, top, 4);
    expect(extra).toBeUndefined();
    const [type, values] = readChildren(der, attr!, 3);
    expect(decodeOid(der, type!.valueStart, type!.end)).toBe('1.2.840.10045.2.1');
    const [curve] = readChildren(der, values!, 2);
    expect(decodeOid(der, curve!.valueStart, curve!.end)).toBe('1.2.840.10045.3.1.7');
    expect(decodeOid(der, oid!.valueStart, oid!.end)).toBe('1.2.840.10045.4.3.2');
  });

  it('simpleenroll with Basic (device id : token): 200, certs-only with only the issued certificate', async () => {
    const deviceId = uniqueDeviceId('est');
    const token = await server.createToken(deviceId);
    const csr = await makeCsr({ cn: deviceId });
    const res = await simpleEnroll(server, basic(deviceId, token), csr.der.toString('base64'));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/pkcs7-mime; smime-type=certs-only');
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.text));
    const certs = certificatesInPkcs7(decodeBase64Body(res.text));
    expect(certs).toHaveLength(1);
    const cert = new X509Certificate(certs[0]!);
    expect(cert.subject).toBe(`CN=${deviceId}`);
    expect(cert.checkPrivateKey(csr.privateKey)).toBe(true);
    // A lost answer: the same token and CSR return the same certificate.
    const again = await simpleEnroll(server, basic(deviceId, token), csr.der.toString('base64'));
    expect(again.status).toBe(200);
    expect(certificatesInPkcs7(decodeBase64Body(again.text))[0]).toEqual(certs[0]);
  });

  it('simpleenroll with Bearer, and with a PEM or raw DER body', async () => {
    const a = uniqueDeviceId('est-bearer');
    const res = await simpleEnroll(server, `Bearer ${await server.createToken(a)}`, (await makeCsr({ cn: a })).pem);
    expect(res.status).toBe(200);
    const b = uniqueDeviceId('est-der');
    const der = await simpleEnroll(server, basic(b, await server.createToken(b)), (await makeCsr({ cn: b })).der);
    expect(der.status).toBe(200);
  });

  it('401 with WWW-Authenticate: Basic for no, malformed or wrong credentials; a wrong user does not spend the token', async () => {
    const deviceId = uniqueDeviceId('est-auth');
    const token = await server.createToken(deviceId);
    const csr = (await makeCsr({ cn: deviceId })).der.toString('base64');
    for (const auth of [undefined, 'Basic !!!', 'Digest x', basic('someone-else', token), basic(deviceId, 'ebt_wrong')]) {
      const res = await simpleEnroll(server, auth, csr);
      expect({ auth, status: res.status }).toEqual({ auth, status: 401 });
      expect(res.headers['www-authenticate']).toMatch(/^Basic realm="enrolld EST"/);
      expect(res.json().type).toBe(problemType('unauthorized'));
    }
    expect(await countCertificates(server, deviceId)).toBe(0);
    const ok = await simpleEnroll(server, basic(deviceId, token), csr);
    expect(ok.status).toBe(200);
  });

  it('RFC 7030 status use for bad requests: 415 wrong media type, 400 bad CSR, 400 identity mismatch', async () => {
    const deviceId = uniqueDeviceId('est-bad');
    const token = await server.createToken(deviceId);
    const csr = (await makeCsr({ cn: deviceId })).der.toString('base64');
    expect((await simpleEnroll(server, basic(deviceId, token), csr, 'application/json')).status).toBe(415);
    const garbage = await simpleEnroll(server, basic(deviceId, token), 'bm90IGEgQ1NS');
    expect(garbage.status).toBe(400);
    expect(garbage.json().type).toBe(problemType('bad-csr'));
    const other = await simpleEnroll(server, basic(deviceId, token), (await makeCsr({ cn: uniqueDeviceId('x') })).der.toString('base64'));
    expect(other.status).toBe(400);
    expect(other.json().type).toBe(problemType('identity-mismatch'));
  });

  it('simplereenroll over mTLS: 200 with the successor; no client certificate is 401', async () => {
    const current = await enrollDevice(server, uniqueDeviceId('est-re'));
    const csr = await makeCsr({ cn: current.deviceId });
    const res = await renewEst(server, current, csr.der);
    expect(res.status).toBe(200);
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.text));
    const [der] = certificatesInPkcs7(decodeBase64Body(res.text));
    const cert = new X509Certificate(der!);
    expect(cert.checkPrivateKey(csr.privateKey)).toBe(true);
    const { rows } = await server.db.pool.query('SELECT predecessor_serial FROM certificates WHERE der = $1', [der]);
    expect(rows[0].predecessor_serial).toBe(current.serial);

    const anonymous = await renewEst(server, undefined, (await makeCsr({ cn: current.deviceId })).der);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toBeDefined();
  });

  it('a challengePassword that is not this connection\'s binding is refused even when linking is only if-present', async () => {
    const current = await enrollDevice(server, uniqueDeviceId('est-ifp'));
    const csr = buildCsr({ cn: current.deviceId, attributes: [challengePasswordAttribute(Buffer.alloc(32, 7).toString('base64'))] });
    const res = await renewEst(server, current, csr.der);
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ type: problemType('forbidden') });
  });
});

describe('CSR-12: proof-of-possession linking required (RFC 7030 §3.5)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { JOBS: 'off', EST_POP_LINKING: 'required' } });
  });
  afterAll(async () => {
    await server.stop();
  });

  async function reenrollOn(session: Awaited<ReturnType<typeof openTls>>, csrDer: Buffer) {
    return requestOnSocket(session.socket, 'POST', routes.est.simplereenroll, { 'Content-Type': 'application/pkcs10', 'Content-Transfer-Encoding': 'base64' }, csrDer.toString('base64'));
  }
  const open = (creds: DeviceCreds, version: 'TLSv1.2' | 'TLSv1.3') => openTls(server.apiUrl, server.rootPem, { version, cert: creds.clientChainPem, key: creds.keyPem });
  const bound = (deviceId: string, binding: Buffer) => buildCsr({ cn: deviceId, attributes: [challengePasswordAttribute(binding.toString('base64'))] });

  it('csrattrs asks for challengePassword', async () => {
    const res = await httpsRequest(server.apiUrl + routes.est.csrattrs, server.rootPem);
    const der = decodeBase64Body(res.text);
    const [first] = readChildren(der, readTlv(der, 0, der.length), 4);
    expect(decodeOid(der, first!.valueStart, first!.end)).toBe('1.2.840.113549.1.9.7');
  });

  for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
    it(`${version}: only the binding of the connection the CSR is sent on is accepted`, async () => {
      const matrix: Record<string, number> = {};

      const a = await enrollDevice(server, uniqueDeviceId('pop-none'));
      const s1 = await open(a, version);
      expect(s1.version).toBe(version);
      matrix['no binding'] = (await reenrollOn(s1, (await makeCsr({ cn: a.deviceId })).der)).status;
      s1.socket.destroy();

      const b = await enrollDevice(server, uniqueDeviceId('pop-other'));
      const other = await open(b, version);
      const target = await open(b, version);
      matrix['binding of another session'] = (await reenrollOn(target, bound(b.deviceId, other.binding).der)).status;
      other.socket.destroy();
      target.socket.destroy();

      const c = await enrollDevice(server, uniqueDeviceId('pop-replay'));
      const first = await open(c, version);
      const csr = bound(c.deviceId, first.binding);
      matrix['correct binding'] = (await reenrollOn(first, csr.der)).status;
      first.socket.destroy();
      const later = await open(c, version);
      matrix['CSR replayed on a later session'] = (await reenrollOn(later, csr.der)).status;
      later.socket.destroy();

      expect(matrix).toEqual({
        'no binding': 400,
        'binding of another session': 403,
        'correct binding': 200,
        'CSR replayed on a later session': 403,
      });
      process.stdout.write(`${JSON.stringify({ id: 'CSR-12', tls: version, matrix })}\n`);
      expect(await countCertificates(server, a.deviceId)).toBe(1);
      expect(await countCertificates(server, b.deviceId)).toBe(1);
      expect(await countCertificates(server, c.deviceId)).toBe(2);
    });
  }
});
