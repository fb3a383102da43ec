// EST interop with real, unmodified clients as child processes: curl + openssl (cacerts, csrattrs,
// simpleenroll, simplereenroll) and strongSwan `pki --estca` / `pki --est` (enroll with HTTP Basic, re-enroll with the
// current certificate). The scripts are the README's.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { canonicalSerial } from '@enrolld/protocol';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CURL_OPENSSL_SCRIPT, readOutput, runScript, STRONGSWAN_SCRIPT } from '../support/est-clients.js';
import { opensslVerifyClientCert } from '../support/openssl.js';
import { REPO_ROOT } from '../support/processes.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

const leafOf = (pem: string) => new X509Certificate(pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/)![0]);

describe('EST with standard clients', () => {
  let server: TestServer;
  let dir: string;
  let caFile: string;

  beforeAll(async () => {
    server = await startTestServer({ env: { JOBS: 'off' } });
    dir = await mkdtemp(path.join(tmpdir(), 'enrolld-est-e2e-'));
    caFile = path.join(dir, 'root.pem');
    await writeFile(caFile, server.rootPem);
  });
  afterAll(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function lineage(deviceId: string): Promise<Array<{ serial: string; predecessor_serial: string | null }>> {
    const { rows } = await server.db.pool.query('SELECT serial, predecessor_serial FROM certificates WHERE device_id = $1 ORDER BY created_at', [deviceId]);
    return rows;
  }

  it('the README shows exactly these commands', async () => {
    const readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
    for (const line of [...CURL_OPENSSL_SCRIPT.split('\n'), ...STRONGSWAN_SCRIPT.split('\n')].filter((l) => l.trim() !== '')) {
      expect({ line, inReadme: readme.includes(line) }).toEqual({ line, inReadme: true });
    }
  });

  it('curl + openssl: cacerts, csrattrs, simpleenroll (Basic), simplereenroll (mTLS)', async () => {
    const work = await mkdtemp(path.join(dir, 'curl-'));
    const device = uniqueDeviceId('curl');
    const token = await server.createToken(device);
    const result = await runScript(CURL_OPENSSL_SCRIPT, work, { url: server.apiUrl, ca: caFile, device, token });
    expect(result).toMatchObject({ code: 0 });

    const cacerts = await readOutput(work, 'cacerts.pem');
    expect(cacerts).toContain('subject=CN = enrolld issuing CA');
    expect(cacerts).toContain('subject=CN = enrolld root CA');
    const attrs = await readOutput(work, 'csrattrs.txt');
    expect(attrs).toMatch(/id-ecPublicKey[\s\S]*prime256v1[\s\S]*ecdsa-with-SHA256/);

    const first = leafOf(await readOutput(work, 'device.pem'));
    const second = leafOf(await readOutput(work, 'device-new.pem'));
    expect(first.subject).toBe(`CN=${device}`);
    expect(second.subject).toBe(`CN=${device}`);
    expect(second.subjectAltName).toBe(`URI:urn:enrolld:device:${device}`);
    await expect(opensslVerifyClientCert(second.toString(), server.chainPem)).resolves.toBeUndefined();
    const rows = await lineage(device);
    expect(rows).toHaveLength(2);
    expect(rows[1]!.predecessor_serial).toBe(rows[0]!.serial);
    expect(rows[1]!.serial).toBe(canonicalSerial(second.serialNumber));
  });

  it('strongSwan pki --estca, pki --est (Basic), pki --est --cert/--key (re-enroll)', async () => {
    const work = await mkdtemp(path.join(dir, 'pki-'));
    const device = uniqueDeviceId('pki');
    const token = await server.createToken(device);
    const result = await runScript(STRONGSWAN_SCRIPT, work, { url: server.apiUrl, ca: caFile, device, token });
    expect({ code: result.code, stderr: result.code === 0 ? '' : result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(result.stderr).toContain('Issued certificate is trusted');

    expect(leafOf(await readOutput(work, 'ca.pem')).subject).toContain('CN=enrolld root CA');
    expect(leafOf(await readOutput(work, 'ca-1.pem')).subject).toContain('CN=enrolld issuing CA');
    const first = leafOf(await readOutput(work, 'device.pem'));
    const second = leafOf(await readOutput(work, 'device-new.pem'));
    expect(first.subject).toBe(`CN=${device}`);
    expect(second.subject).toBe(`CN=${device}`);
    expect(second.serialNumber).not.toBe(first.serialNumber);
    await expect(opensslVerifyClientCert(second.toString(), server.chainPem)).resolves.toBeUndefined();
    const rows = await lineage(device);
    expect(rows).toHaveLength(2);
    expect(rows[1]!.predecessor_serial).toBe(rows[0]!.serial);
  });
});
