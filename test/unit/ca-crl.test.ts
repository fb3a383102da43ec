import 'reflect-metadata';
import { beforeAll, describe, expect, it } from '@jest/globals';
import * as x509 from '@peculiar/x509';
import { generateSerial, parseCsr, serialHex } from '@enrolld/core/ca/index.js';
import type { CaMaterial, DeviceIssuingCa } from '@enrolld/core/ca/index.js';
import { toPem } from '@enrolld/core/ca/der.js';
import { buildCsr, createTestIssuingCa, rejectionOf } from '../support/csr-factory.js';
import { opensslText, opensslVerify, runOpenssl, withTempDir } from '../support/openssl.js';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

// signCrl: a v2 CRL (RFC 5280 §5) signed by the issuing CA with cRLNumber and AKI, reasonCode per entry when ≠ 0.

x509.cryptoProvider.set(globalThis.crypto);
let ca: DeviceIssuingCa;
let material: CaMaterial;
beforeAll(async () => {
  ({ ca, material } = await createTestIssuingCa());
});

const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const hour = 3600_000;

describe('signCrl', () => {
  it('openssl parses it, verifies its signature, and shows version 2, cRLNumber, AKI and the reason codes', async () => {
    const entries = [
      { serial: serialHex(generateSerial()), revokedAt: new Date(now.getTime() - 3 * hour), reasonCode: 0 },
      { serial: serialHex(generateSerial()).toUpperCase(), revokedAt: new Date(now.getTime() - 2 * hour), reasonCode: 1 },
      { serial: serialHex(generateSerial()), revokedAt: new Date(now.getTime() - hour), reasonCode: 4 },
    ];
    const der = ca.signCrl({ entries, thisUpdate: now, nextUpdate: new Date(now.getTime() + 24 * hour), crlNumber: 42n });
    const text = await opensslText('crl', der);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/Version 2 \(0x1\)/);
    expect(text.stdout).toMatch(/X509v3 CRL Number:\s+42/);
    expect(text.stdout).toMatch(/X509v3 Authority Key Identifier:\s+(keyid:)?[0-9A-F:]+/);
    expect(text.stdout).toMatch(/Key Compromise/);
    expect(text.stdout).toMatch(/Superseded/);
    expect(text.stdout.match(/X509v3 CRL Reason Code/g)).toHaveLength(2); // none for unspecified (RFC 5280 §5.3.1)
    for (const e of entries) expect(text.stdout.toUpperCase()).toContain(e.serial.toUpperCase());

    const verified = await withTempDir(async (dir) => {
      await writeFile(path.join(dir, 'crl.der'), der);
      await writeFile(path.join(dir, 'ca.pem'), ca.chainPem);
      return runOpenssl(['crl', '-inform', 'DER', '-in', path.join(dir, 'crl.der'), '-CAfile', path.join(dir, 'ca.pem'), '-noout']);
    });
    expect(verified.stderr + verified.stdout).toMatch(/verify OK/);

    const crl = new x509.X509Crl(der);
    expect(await crl.verify({ publicKey: new x509.X509Certificate(material.issuingCertPem).publicKey })).toBe(true);
    expect(crl.entries.map((e) => e.serialNumber.toLowerCase())).toEqual(entries.map((e) => e.serial.toLowerCase()));
    expect(crl.entries.map((e) => e.revocationDate.getTime())).toEqual(entries.map((e) => e.revokedAt.getTime()));
    expect(crl.thisUpdate.getTime()).toBe(now.getTime());
  });

  it('an empty CRL leaves out revokedCertificates (RFC 5280 §5.1.2.6)', async () => {
    const der = ca.signCrl({ entries: [], thisUpdate: now, nextUpdate: new Date(now.getTime() + hour), crlNumber: 1n });
    const text = await opensslText('crl', der);
    expect(text.stdout).toMatch(/No Revoked Certificates/);
    expect(text.stdout).toMatch(/X509v3 CRL Number:\s+1\b/);
  });

  it('openssl verify -crl_check reports a revoked device certificate, and accepts one that is not listed', async () => {
    const csr = parseCsr(buildCsr({ cn: 'crl-dev' }).der);
    const { notBefore, notAfter } = ca.deviceValidity(new Date(), 3600, 60);
    const issue = () => {
      const spec = { kind: 'device' as const, profile: { name: 'device', version: 1 }, deviceId: 'crl-dev', serial: generateSerial(), spkiDer: csr.spkiDer, notBefore, notAfter };
      const der = ca.signCertificate(ca.buildDeviceTbs(spec));
      return { der, serial: serialHex(spec.serial) };
    };
    const revoked = issue();
    const fine = issue();
    const crl = ca.signCrl({ entries: [{ serial: revoked.serial, revokedAt: new Date(), reasonCode: 1 }], thisUpdate: new Date(Date.now() - 60_000), nextUpdate: new Date(Date.now() + hour), crlNumber: 7n });
    // -crl_check checks the leaf only, so the issuing CA's CRL is all that is needed.
    const bad = await opensslVerify(toPem('CERTIFICATE', revoked.der), ca.chainPem, { crlPem: toPem('X509 CRL', crl) });
    expect(bad.code).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/certificate revoked/);
    const ok = await opensslVerify(toPem('CERTIFICATE', fine.der), ca.chainPem, { crlPem: toPem('X509 CRL', crl) });
    expect(ok.stdout).toMatch(/: OK\s*$/);
  });

  it.each([
    ['reason code 7 (unassigned)', { entries: [{ serial: '01ab', revokedAt: now, reasonCode: 7 }] }],
    ['reason code 11', { entries: [{ serial: '01ab', revokedAt: now, reasonCode: 11 }] }],
    ['a negative serial', { entries: [{ serial: '80ab', revokedAt: now, reasonCode: 1 }] }],
    ['a serial that is not hex', { entries: [{ serial: 'zz', revokedAt: now, reasonCode: 1 }] }],
    ['a serial listed twice', { entries: [{ serial: '01ab', revokedAt: now, reasonCode: 1 }, { serial: '01AB', revokedAt: now, reasonCode: 4 }] }],
    ['nextUpdate before thisUpdate', { nextUpdate: new Date(now.getTime() - 1000) }],
    ['a negative crlNumber', { crlNumber: -1n }],
    ['a crlNumber of 2^159 (more than 20 octets)', { crlNumber: 1n << 159n }],
  ])('refuses %s as internal', (_name, change) => {
    const spec = { entries: [], thisUpdate: now, nextUpdate: new Date(now.getTime() + hour), crlNumber: 1n, ...change };
    expect(rejectionOf(() => ca.signCrl(spec)).kind).toBe('internal');
  });
});
