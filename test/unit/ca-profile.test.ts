import 'reflect-metadata';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { createPrivateKey, generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { deviceUri } from '@enrolld/protocol';
import {
  assertCsrNamesIdentity,
  createCaMaterial,
  createIssuingCa,
  generateSerial,
  issueServerCertificate,
  parseCsr,
  readCertificateIdentity,
  serialHex,
} from '@enrolld/core/ca/index.js';
import type { CaMaterial, DeviceCertificateSpec, DeviceIssuingCa } from '@enrolld/core/ca/index.js';
import {
  derBitString,
  derBoolean,
  derExplicit,
  derImplicit,
  derInteger,
  derNull,
  derOid,
  derSequence,
  derSet,
  derUtf8String,
  readChildren,
  readTlv,
  toPem,
} from '@enrolld/core/ca/der.js';
import { OID } from '@enrolld/core/ca/oids.js';
import { buildCsr, createTestIssuingCa, extension, generateTestKey, makeCsr, randomDeviceId, rejectionOf } from '../support/csr-factory.js';
import { opensslVerifyClientCert, opensslVerify } from '../support/openssl.js';

x509.cryptoProvider.set(globalThis.crypto);

let material: CaMaterial;
let ca: DeviceIssuingCa;

beforeAll(async () => {
  ({ material, ca } = await createTestIssuingCa({ serverNames: ['enrolld.example', '10.0.0.7'] }));
});

async function issue(deviceId: string, lifetime = 30 * 86400, backdate = 300) {
  const csr = parseCsr((await makeCsr({ cn: deviceId })).pem);
  assertCsrNamesIdentity(csr, 'device', deviceId);
  const { notBefore, notAfter } = ca.deviceValidity(new Date(), lifetime, backdate);
  const spec: DeviceCertificateSpec = { kind: 'device' as const, profile: { name: 'device', version: 1 }, deviceId, serial: generateSerial(), spkiDer: csr.spkiDer, notBefore, notAfter };
  const der = ca.signCertificate(ca.buildDeviceTbs(spec));
  ca.checkIssued(der, spec);
  return { der, spec, csr };
}

describe('CERT-04 issued device certificate profile', () => {
  it('parses with @peculiar/x509 and has exactly the device profile', async () => {
    const deviceId = randomDeviceId();
    const { der, spec } = await issue(deviceId);
    const cert = new x509.X509Certificate(der);
    expect(cert.subject).toBe(`CN=${deviceId}`);
    expect(cert.serialNumber.toLowerCase()).toBe(serialHex(spec.serial));
    expect(cert.notBefore.getTime()).toBe(spec.notBefore.getTime());
    expect(cert.notAfter.getTime()).toBe(spec.notAfter.getTime());
    expect(Buffer.from(cert.publicKey.rawData).equals(spec.spkiDer)).toBe(true);
    expect(await cert.verify({ publicKey: new x509.X509Certificate(material.issuingCertPem).publicKey, signatureOnly: true })).toBe(true);
    const oids = cert.extensions.map((e) => e.type).sort();
    expect(oids).toEqual([OID.enrolldProfile, '2.5.29.14', '2.5.29.15', '2.5.29.17', '2.5.29.19', '2.5.29.35', '2.5.29.37'].sort());
    expect(cert.getExtension(OID.enrolldProfile)!.critical).toBe(false);
    expect(readCertificateIdentity(der).profile).toEqual({ name: 'device', version: 1 });
    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.critical).toBe(true);
    expect(bc.ca).toBe(false);
    expect(bc.pathLength).toBeUndefined();
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).toBe(true);
    expect(ku.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)!;
    expect(eku.usages).toEqual(['1.3.6.1.5.5.7.3.2']);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    expect(san.names.toJSON()).toEqual([{ type: 'url', value: deviceUri(deviceId) }]);
    const issuing = new x509.X509Certificate(material.issuingCertPem);
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension)!;
    expect(aki.keyId).toBe(issuing.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    await expect(opensslVerifyClientCert(toPem('CERTIFICATE', der), ca.chainPem)).resolves.toBeUndefined();
  });

  it('server certificate is a serverAuth leaf for localhost, 127.0.0.1, ::1 and the configured names', async () => {
    const chain = material.issuingCertPem + material.rootCertPem;
    const ok = await opensslVerify(material.serverCertPem, chain, { purpose: 'sslserver' });
    expect(ok.stdout).toMatch(/: OK\s*$/);
    const asClient = await opensslVerify(material.serverCertPem, chain, { purpose: 'sslclient' });
    expect(asClient.code).not.toBe(0);
    const cert = new x509.X509Certificate(material.serverCertPem);
    const names = cert.getExtension(x509.SubjectAlternativeNameExtension)!.names.toJSON().map((n) => `${n.type}:${n.value}`);
    expect(names.sort()).toEqual(['dns:enrolld.example', 'dns:localhost', 'ip:10.0.0.7', 'ip:127.0.0.1', 'ip:::1'].sort());
  });
});

// ───────────── checkIssued catches deviations (CERT-04 "a mismatch aborts") ─────────────

/** Rebuilds a signed device certificate with its TBS fields passed through `edit`, signed by a throwaway key. */
function rebuilt(certDer: Buffer, edit: (fields: Buffer[]) => Buffer[]): Buffer {
  const cert = readTlv(certDer, 0, certDer.length);
  const [tbs, alg] = readChildren(certDer, cert);
  const fields = readChildren(certDer, tbs!).map((f) => certDer.subarray(f.start, f.end));
  const newTbs = derSequence(...edit(fields));
  const throwaway = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  return derSequence(newTbs, certDer.subarray(alg!.start, alg!.end), derBitString(sign('sha256', newTbs, throwaway)));
}

/** The extension list of a certificate's [3] field, as raw Extension DERs. */
function extensionsOf(field: Buffer): Buffer[] {
  const outer = readTlv(field, 0, field.length);
  const seq = readChildren(field, outer)[0]!;
  return readChildren(field, seq).map((e) => field.subarray(e.start, e.end));
}
const withExtensions = (exts: Buffer[]) => derExplicit(3, derSequence(...exts));

describe('CERT-04 checkIssued rejects a tampered or mismatched certificate', () => {
  let der: Buffer;
  let spec: DeviceCertificateSpec;
  beforeAll(async () => {
    ({ der, spec } = await issue('tamper-1'));
  });

  const expectInternal = (fn: () => void, detail?: RegExp) =>
    expect(rejectionOf(fn)).toEqual({ kind: 'internal', detail: detail ? expect.stringMatching(detail) : expect.stringMatching(/profile check/) });

  it('the untouched certificate passes', () => {
    expect(() => ca.checkIssued(der, spec)).not.toThrow();
  });

  it('every single-bit flip inside the TBSCertificate is caught', () => {
    const tbs = readChildren(der, readTlv(der, 0, der.length))[0]!;
    let missed = 0;
    for (let i = tbs.start; i < tbs.end; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const mutated = Buffer.from(der);
        mutated[i]! ^= 1 << bit;
        try {
          ca.checkIssued(mutated, spec);
          missed++;
        } catch (error) {
          expect((error as { kind?: string }).kind).toBe('internal');
        }
      }
    }
    expect(missed).toBe(0);
  });

  it.each<[string, (s: DeviceCertificateSpec) => DeviceCertificateSpec, RegExp]>([
    ['another serial', (s) => ({ ...s, serial: generateSerial() }), /serialNumber differs/],
    ['another device id', (s) => ({ ...s, deviceId: 'tamper-2' }), /subject CN is not the device id/],
    ['another key', (s) => ({ ...s, spkiDer: parseCsr(buildCsr({}).der).spkiDer }), /subjectPublicKeyInfo differs/],
    ['another notBefore', (s) => ({ ...s, notBefore: new Date(s.notBefore.getTime() - 1000) }), /notBefore differs/],
    ['another notAfter', (s) => ({ ...s, notAfter: new Date(s.notAfter.getTime() + 1000) }), /notAfter differs/],
  ])('a spec with %s', (_name, change, detail) => {
    expectInternal(() => ca.checkIssued(der, change(spec)), detail);
  });

  it.each<[string, (f: Buffer[]) => Buffer[], RegExp]>([
    ['an extra extension', (f) => [...f.slice(0, 7), withExtensions([...extensionsOf(f[7]!), extension('1.3.6.1.4.1.55555.1', false, derNull())])], /more than the 7 profile extensions/],
    ['a missing extension (no EKU)', (f) => [...f.slice(0, 7), withExtensions(extensionsOf(f[7]!).filter((e) => !e.includes(derOid(OID.extKeyUsage))))], /6 extensions, expected exactly 7/],
    [
      'CA:TRUE instead of CA:FALSE',
      (f) => [...f.slice(0, 7), withExtensions(extensionsOf(f[7]!).map((e) => (e.includes(derOid(OID.basicConstraints)) ? extension(OID.basicConstraints, true, derSequence(derBoolean(true))) : e)))],
      /basicConstraints/,
    ],
    [
      'serverAuth EKU',
      (f) => [...f.slice(0, 7), withExtensions(extensionsOf(f[7]!).map((e) => (e.includes(derOid(OID.extKeyUsage)) ? extension(OID.extKeyUsage, false, derSequence(derOid(OID.kpServerAuth))) : e)))],
      /extKeyUsage/,
    ],
    [
      'a non-critical keyUsage',
      (f) => [...f.slice(0, 7), withExtensions(extensionsOf(f[7]!).map((e) => (e.includes(derOid(OID.keyUsage)) ? extension(OID.keyUsage, false, Buffer.from([3, 2, 7, 0x80])) : e)))],
      /keyUsage/,
    ],
    ['a duplicated extension', (f) => [...f.slice(0, 7), withExtensions([...extensionsOf(f[7]!).slice(0, 5), extensionsOf(f[7]!)[0]!])], /duplicate extension/],
    ['a second subject attribute', (f) => [...f.slice(0, 5), derSequence(...readChildren(f[5]!, readTlv(f[5]!, 0, f[5]!.length)).map((r) => f[5]!.subarray(r.start, r.end)), derSet(derSequence(derOid('2.5.4.10'), derUtf8String('x')))), ...f.slice(6)], /exactly CN/],
    ['an issuerUniqueID field', (f) => [...f.slice(0, 7), derImplicit(1, Buffer.from([0, 1])), f[7]!], /no unique IDs/],
    ['version v1', (f) => [derExplicit(0, derInteger(0)), ...f.slice(1)], /version/],
    ['another issuer name', (f) => [...f.slice(0, 3), derSequence(derSet(derSequence(derOid(OID.commonName), derUtf8String('evil CA')))), ...f.slice(4)], /issuer/],
  ])('a certificate with %s', (_name, edit, detail) => {
    expectInternal(() => ca.checkIssued(rebuilt(der, edit), spec), detail);
  });

  it('garbage and trailing bytes', () => {
    expectInternal(() => ca.checkIssued(Buffer.from('not a certificate'), spec));
    expectInternal(() => ca.checkIssued(Buffer.concat([der, Buffer.from([0])]), spec));
  });

  it('signCertificate signs only TBS buffers that buildDeviceTbs built', () => {
    const tbs = ca.buildDeviceTbs(spec);
    expectInternal(() => ca.signCertificate(Buffer.from(tbs)), /did not build/);
    expect(() => ca.signCertificate(tbs)).not.toThrow();
  });

  it.each<[string, Partial<DeviceCertificateSpec>]>([
    ['an invalid device id', { deviceId: 'Bad/Id' }],
    ['a device id of 64 characters', { deviceId: 'a'.repeat(64) }],
    ['an SPKI that is not DER', { spkiDer: Buffer.from('nope') }],
  ])('buildDeviceTbs refuses %s', (_name, change) => {
    expectInternal(() => ca.buildDeviceTbs({ ...spec, ...change }), /device certificate spec/);
  });

  it('a 63-character device id (the longest) issues and verifies', async () => {
    const { der: long } = await issue('x'.repeat(63));
    await expect(opensslVerifyClientCert(toPem('CERTIFICATE', long), ca.chainPem)).resolves.toBeUndefined();
  });

  it('P-384 and RSA device keys are certified too (signed by the P-256 issuing CA)', async () => {
    for (const kind of ['P-384', { rsa: 2048 }] as const) {
      const key = generateTestKey(kind);
      const csr = parseCsr(buildCsr({ key: key.privateKey, cn: 'multi-key' }).der);
      const { notBefore, notAfter } = ca.deviceValidity(new Date(), 3600, 60);
      const s = { kind: 'device' as const, profile: { name: 'device', version: 1 }, deviceId: 'multi-key', serial: generateSerial(), spkiDer: csr.spkiDer, notBefore, notAfter };
      const d = ca.signCertificate(ca.buildDeviceTbs(s));
      ca.checkIssued(d, s);
      await expect(opensslVerifyClientCert(toPem('CERTIFICATE', d), ca.chainPem)).resolves.toBeUndefined();
    }
  });
});

describe('CA material', () => {
  it('root: self-signed P-256, 10 years, CA:TRUE and keyCertSign|cRLSign critical, SKI; intermediate: pathLen 0, AKI = root SKI', async () => {
    const root = new x509.X509Certificate(material.rootCertPem);
    const issuing = new x509.X509Certificate(material.issuingCertPem);
    expect(await root.isSelfSigned()).toBe(true);
    expect((root.publicKey.algorithm as { namedCurve?: string }).namedCurve).toBe('P-256');
    expect(root.notAfter.getUTCFullYear() - root.notBefore.getUTCFullYear()).toBe(10);
    expect(issuing.notAfter.getUTCFullYear() - issuing.notBefore.getUTCFullYear()).toBe(5);
    const rootBc = root.getExtension(x509.BasicConstraintsExtension)!;
    expect([rootBc.ca, rootBc.critical]).toEqual([true, true]);
    const rootKu = root.getExtension(x509.KeyUsagesExtension)!;
    expect([rootKu.usages, rootKu.critical]).toEqual([x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true]);
    const bc = issuing.getExtension(x509.BasicConstraintsExtension)!;
    expect([bc.ca, bc.pathLength, bc.critical]).toEqual([true, 0, true]);
    expect(issuing.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).toBe(root.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    expect(await issuing.verify({ publicKey: root.publicKey, signatureOnly: true })).toBe(true);
    expect(ca.keyIdentifier.toString('hex')).toBe(issuing.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    expect(material.rootKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(material.serverChainPem).toBe(material.serverCertPem + material.issuingCertPem.replace(/\r/g, ''));
  });

  it('createIssuingCa refuses mismatched material', async () => {
    const other = await createCaMaterial({ now: new Date(), serverNames: [] });
    expect(() => createIssuingCa({ issuingCertificatePem: material.issuingCertPem, issuingPrivateKey: createPrivateKey(other.issuingKeyPem), rootCertificatePem: material.rootCertPem })).toThrow(/does not match/);
    expect(() => createIssuingCa({ issuingCertificatePem: material.issuingCertPem, issuingPrivateKey: createPrivateKey(material.issuingKeyPem), rootCertificatePem: other.rootCertPem })).toThrow(/not signed by the root/);
  });

  it('issueServerCertificate re-issues for new names with a fresh key', async () => {
    const again = await issueServerCertificate({ now: new Date(), serverNames: ['mqtt.example', 'fd00::7'], issuingCertificatePem: material.issuingCertPem, issuingKeyPem: material.issuingKeyPem });
    expect(again.serverKeyPem).not.toBe(material.serverKeyPem);
    const r = await opensslVerify(again.serverCertPem, material.issuingCertPem + material.rootCertPem, { purpose: 'sslserver' });
    expect(r.stdout).toMatch(/: OK\s*$/);
    const text = new X509Certificate(again.serverCertPem).subjectAltName;
    expect(text).toContain('DNS:mqtt.example');
    expect(text).toContain('IP Address:FD00:0:0:0:0:0:0:7');
    await expect(issueServerCertificate({ now: new Date(), serverNames: ['bad name!'], issuingCertificatePem: material.issuingCertPem, issuingKeyPem: material.issuingKeyPem })).rejects.toThrow(/neither a DNS name nor an IP/);
  });
});
