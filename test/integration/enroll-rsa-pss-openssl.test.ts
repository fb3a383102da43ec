// A CSR made by `openssl req` with RSASSA-PSS and openssl's default salt length (the maximum the key allows on
// OpenSSL 3.0, the hash length from 3.1 on) enrolls; so do the explicit `digest` and `max` salt lengths.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { routes } from '@enrolld/protocol';
import { postJson } from '../support/http.js';
import { runOpenssl, withTempDir } from '../support/openssl.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

async function opensslPssCsr(deviceId: string, sigopts: string[]): Promise<{ pem: string; saltLength: number }> {
  return withTempDir(async (dir) => {
    const key = path.join(dir, 'key.pem');
    const csr = path.join(dir, 'csr.pem');
    expect((await runOpenssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', key])).code).toBe(0);
    const made = await runOpenssl(['req', '-new', '-key', key, '-subj', `/CN=${deviceId}`, '-sha256', '-sigopt', 'rsa_padding_mode:pss', ...sigopts.flatMap((o) => ['-sigopt', o]), '-out', csr]);
    expect(made).toMatchObject({ code: 0 });
    const text = await runOpenssl(['req', '-in', csr, '-noout', '-text']);
    const salt = /Salt Length: 0x([0-9A-Fa-f]+)/.exec(text.stdout);
    if (!salt) throw new Error(`no PSS salt length in:\n${text.stdout}`);
    return { pem: await readFile(csr, 'utf8'), saltLength: parseInt(salt[1]!, 16) };
  });
}

describe('RSASSA-PSS CSRs from `openssl req`', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it.each([
    ['openssl\'s default salt length', []],
    ['rsa_pss_saltlen:digest (32)', ['rsa_pss_saltlen:digest']],
    ['rsa_pss_saltlen:max (222)', ['rsa_pss_saltlen:max']],
  ])('enrolls with %s', async (name, sigopts) => {
    const deviceId = uniqueDeviceId('pss');
    const token = await server.createToken(deviceId);
    const csr = await opensslPssCsr(deviceId, sigopts);
    const res = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: csr.pem });
    expect({ status: res.status, body: res.status === 201 ? undefined : res.text }).toEqual({ status: 201, body: undefined });
    const openssl = (await runOpenssl(['version'])).stdout.trim();
    process.stdout.write(JSON.stringify({ id: 'CSR-pss-openssl', figures: { case: name, openssl, saltLength: csr.saltLength } }) + '\n');
  });
});
