// Environments through the real admin API of a test server (`enrolld up`): create one, make a token in it, and enroll a
// device there as a device does (token + CSR + POST /v1/enroll); plus the checks the environment tests share.
import { X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { canonicalSerial, environmentSchema, routes, type CreatedToken, type EnrollResponse, type EnvironmentBody } from '@enrolld/protocol';
import { makeCsr } from './csr-factory.js';
import { httpsRequest, postJson, type RawResponse } from './http.js';
import { runOpenssl, withTempDir } from './openssl.js';
import { credsFrom, type DeviceCreds } from './renew-support.js';
import type { TestServer } from './server-harness.js';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g;

export const adminHeaders = (server: TestServer) => ({ authorization: `Bearer ${server.adminToken}` });

export function adminGet(server: TestServer, path: string): Promise<RawResponse> {
  return httpsRequest(server.apiUrl + path, server.rootPem, { headers: adminHeaders(server) });
}

export function adminPost(server: TestServer, path: string, body: unknown): Promise<RawResponse> {
  return postJson(server.apiUrl + path, server.rootPem, body, adminHeaders(server));
}

export function adminDelete(server: TestServer, path: string): Promise<RawResponse> {
  return httpsRequest(server.apiUrl + path, server.rootPem, { method: 'DELETE', headers: adminHeaders(server) });
}

export async function createEnvironment(server: TestServer, name: string, options: { ownRoot?: boolean } = {}): Promise<EnvironmentBody> {
  const res = await adminPost(server, routes.adminEnvironments, { name, ...options });
  if (res.status !== 201) throw new Error(`environment create failed: ${res.status} ${res.text}`);
  return environmentSchema.parse(res.json());
}

/** A bootstrap token for `deviceId` in `environment`. */
export async function tokenIn(server: TestServer, environment: string, deviceId: string): Promise<string> {
  const res = await adminPost(server, routes.adminTokens, { deviceId, environment });
  if (res.status !== 201) throw new Error(`token create failed: ${res.status} ${res.text}`);
  return res.json<CreatedToken[]>()[0]!.token;
}

/** A device enrolled in `environment` through the API; its creds carry its leaf and its environment's issuing CA. */
export async function enrollIn(server: TestServer, environment: string, deviceId: string): Promise<DeviceCreds & { response: EnrollResponse }> {
  const token = await tokenIn(server, environment, deviceId);
  const csr = await makeCsr({ cn: deviceId });
  const res = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: csr.pem });
  if (res.status !== 201) throw new Error(`enroll failed: ${res.status} ${res.text}`);
  const response = res.json<EnrollResponse>();
  return { ...credsFrom(response, csr.privateKey), response };
}

/** The certificates of a PEM chain, in order. */
export function certificatesOf(chainPem: string): X509Certificate[] {
  return (chainPem.match(PEM_BLOCK) ?? []).map((block) => new X509Certificate(block));
}

/** True when `issuer` signed `certificate` (names match and the signature verifies). */
export function signedBy(certificate: X509Certificate | string, issuer: X509Certificate): boolean {
  const cert = typeof certificate === 'string' ? new X509Certificate(certificate) : certificate;
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

/**
 * openssl's reading of a DER CRL checked against a chain (`openssl crl -CAfile`): whether its signature verifies with
 * that chain's issuing CA, and the serials it lists (canonical form).
 */
export async function readCrl(der: Buffer, chainPem: string): Promise<{ verified: boolean; serials: string[]; text: string }> {
  return withTempDir(async (dir) => {
    await writeFile(path.join(dir, 'crl.der'), der);
    await writeFile(path.join(dir, 'chain.pem'), chainPem);
    const result = await runOpenssl(['crl', '-inform', 'DER', '-in', path.join(dir, 'crl.der'), '-CAfile', path.join(dir, 'chain.pem'), '-noout', '-text']);
    const serials = [...result.stdout.matchAll(/Serial Number: ([0-9A-Fa-f]+)/g)].map((m) => canonicalSerial(m[1]!) ?? m[1]!);
    return { verified: /verify OK/.test(result.stderr + result.stdout), serials, text: result.stdout };
  });
}

/** The bytes of a GET (a DER CRL), with the status. */
export function getBytes(server: TestServer, route: string): Promise<{ status: number; body: Buffer; text: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(server.apiUrl + route, { ca: server.rootPem, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, body, text: body.toString('utf8') });
        });
        res.on('error', reject);
      })
      .on('error', reject);
  });
}
