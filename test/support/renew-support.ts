// Helpers for the rotation tests: enroll a device through the real API, renew over REST / EST with its current
// certificate as the TLS client certificate, and mint certificates from the server's own issuing CA with chosen
// validity (expired, not yet valid) for ROT-03.
import { X509Certificate, createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { routes, type EnrollResponse, type IdentityKind } from '@enrolld/protocol';
import { newSerial, serialHex } from '@enrolld/core/ca/index.js';
import { readIssuingCa } from '../../server/src/compose/pki-home.js';
import { makeCsr } from './csr-factory.js';
import { httpsRequest, postJson, type RawResponse } from './http.js';
import type { TestServer, TokenOptions } from './server-harness.js';

export interface DeviceCreds {
  deviceId: string;
  serial: string;
  privateKey: KeyObject;
  keyPem: string;
  certPem: string;
  /** Leaf then issuing CA: what a real device presents. */
  clientChainPem: string;
  notAfter: Date;
  /** When the server says the renewal window opens (the answer's renewAfter). */
  renewAfter: Date;
}

export function credsFrom(response: EnrollResponse, privateKey: KeyObject): DeviceCreds {
  const issuing = response.chain.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/)?.[0] ?? '';
  return {
    deviceId: response.deviceId,
    serial: response.serial,
    privateKey,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    certPem: response.certificate,
    clientChainPem: response.certificate + issuing,
    notAfter: new Date(response.notAfter),
    renewAfter: new Date(response.renewAfter),
  };
}

/** Token + CSR + POST /v1/enroll, as a device does. */
export async function enrollDevice(server: TestServer, deviceId: string, options?: TokenOptions): Promise<DeviceCreds> {
  const token = await server.createToken(deviceId, undefined, options);
  const csr = await makeCsr({ cn: deviceId });
  const res = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: csr.pem });
  if (res.status !== 201) throw new Error(`enroll failed: ${res.status} ${res.text}`);
  return credsFrom(res.json<EnrollResponse>(), csr.privateKey);
}

export function renewRest(server: TestServer, creds: Pick<DeviceCreds, 'clientChainPem' | 'keyPem'> | undefined, csrPem: string): Promise<RawResponse> {
  return httpsRequest(server.apiUrl + routes.renew, server.rootPem, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ csr: csrPem }),
    ...(creds ? { cert: creds.clientChainPem, key: creds.keyPem } : {}),
  });
}

export function renewEst(server: TestServer, creds: Pick<DeviceCreds, 'clientChainPem' | 'keyPem'> | undefined, csrDer: Buffer): Promise<RawResponse> {
  return httpsRequest(server.apiUrl + routes.est.simplereenroll, server.rootPem, {
    method: 'POST',
    headers: { 'content-type': 'application/pkcs10', 'content-transfer-encoding': 'base64' },
    body: csrDer.toString('base64'),
    ...(creds ? { cert: creds.clientChainPem, key: creds.keyPem } : {}),
  });
}

/**
 * A certificate from the server's own issuing CA with the given validity, of `kind` under `profile` (the built-in one of
 * the kind unless given), recorded in the database as enrollment would (so it is "ours" in every respect but its dates).
 */
export async function issueFromServerCa(
  server: TestServer,
  deviceId: string,
  validity: { notBefore: Date; notAfter: Date },
  kind: IdentityKind = 'device',
  profile: { name: string; version: number } = { name: kind, version: 1 },
): Promise<DeviceCreds> {
  const ca = await readIssuingCa(server.home);
  const csr = await makeCsr({ cn: deviceId });
  const serial = newSerial();
  const whole = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);
  validity = { notBefore: whole(validity.notBefore), notAfter: whole(validity.notAfter) };
  const spkiDer = createPublicKey(csr.privateKey).export({ format: 'der', type: 'spki' });
  const tbs = ca.buildDeviceTbs({ kind, profile, deviceId, serial, spkiDer, notBefore: validity.notBefore, notAfter: validity.notAfter });
  const der = ca.signCertificate(tbs);
  await server.db.pool.query('INSERT INTO devices (id, kind, profile) VALUES ($1, $2, $2) ON CONFLICT DO NOTHING', [deviceId, kind]);
  await server.db.pool.query(
    `INSERT INTO certificates (serial, device_id, public_key_sha256, csr_sha256, tbs_der, der, not_before, not_after, issued_at, identity_kind, profile, profile_version)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), $9, $10, $11)`,
    [
      serialHex(serial), deviceId, createHash('sha256').update(spkiDer).digest(), createHash('sha256').update(csr.der).digest(), tbs, der,
      validity.notBefore, validity.notAfter, kind, profile.name, profile.version,
    ],
  );
  const certPem = new X509Certificate(der).toString();
  return credsFrom(
    { deviceId, serial: serialHex(serial), certificate: certPem, chain: ca.chainPem, notAfter: validity.notAfter.toISOString(), renewAfter: validity.notAfter.toISOString() },
    csr.privateKey,
  );
}

export async function countCertificates(server: TestServer, deviceId: string): Promise<number> {
  const { rows } = await server.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM certificates WHERE device_id = $1', [deviceId]);
  return rows[0]!.n;
}
