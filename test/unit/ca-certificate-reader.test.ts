// The one certificate reader (core/src/ca/certificate-reader.ts) agrees with OpenSSL (node:crypto X509Certificate)
// and @peculiar/x509 on the certificates the CA issues and the broker sees, and answers malformed DER with DerError.
import 'reflect-metadata';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { deviceUri } from '@enrolld/protocol';
import { generateSerial, KeyUsageBit, parseCsr, readCertificate, readCertificateIdentity } from '@enrolld/core/ca/index.js';
import type { CaMaterial, DeviceCertificateSpec, DeviceIssuingCa } from '@enrolld/core/ca/index.js';
import { DerError, derExplicit, derInteger, derNull, derSequence, derUtf8String, fromPem, readChildren, readTlv } from '@enrolld/core/ca/der.js';
import { profileExtensionValue } from '@enrolld/core/ca/device-profile.js';
import { OID, oidHex } from '@enrolld/core/ca/oids.js';
import { extension } from '@enrolld/core/ca/x509-encoding.js';
import { createTestIssuingCa, makeCsr } from '../support/csr-factory.js';
import { createTestPki, deviceIdFor } from '../support/test-pki.js';

x509.cryptoProvider.set(globalThis.crypto);

let material: CaMaterial;
let ca: DeviceIssuingCa;
let device: { der: Buffer; spec: DeviceCertificateSpec };

beforeAll(async () => {
  ({ material, ca } = await createTestIssuingCa({ serverNames: ['enrolld.example', '10.0.0.7'] }));
  const deviceId = deviceIdFor('reader');
  const csr = parseCsr((await makeCsr({ cn: deviceId })).pem);
  const { notBefore, notAfter } = ca.deviceValidity(new Date(), 30 * 86400, 300);
  const spec: DeviceCertificateSpec = { kind: 'device' as const, profile: { name: 'device', version: 1 }, deviceId, serial: generateSerial(), spkiDer: csr.spkiDer, notBefore, notAfter };
  device = { der: ca.signCertificate(ca.buildDeviceTbs(spec)), spec };
});

/** The reason a call threw, as its type and message. */
function thrown(fn: () => unknown): { type: string; message: string } | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    return { type: error instanceof DerError ? 'DerError' : (error as Error).constructor.name, message: (error as Error).message };
  }
}

const subjectKeyIdOf = (der: Buffer): string => new x509.X509Certificate(der).getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;

describe('certificate reader on the certificates the CA issues', () => {
  it('a device certificate: serial, CN, SAN URI, validity, KU/EKU/CA flag and key ids', () => {
    const { der, spec } = device;
    const openssl = new X509Certificate(der);
    const read = readCertificateIdentity(der);
    expect({
      serialHex: read.serialHex,
      commonNames: read.commonNames,
      sanUris: read.sanUris,
      sanOtherNames: read.sanOtherNames,
      notBefore: read.notBefore.getTime(),
      notAfter: read.notAfter.getTime(),
      isCa: read.isCa,
      keyUsage: read.keyUsage,
      extendedKeyUsage: read.extendedKeyUsage,
      authorityKeyIdentifier: read.authorityKeyIdentifier?.toString('hex'),
      subjectKeyIdentifier: read.subjectKeyIdentifier?.toString('hex'),
      issuerDer: read.issuerDer.toString('hex'),
      profile: read.profile,
    }).toEqual({
      serialHex: spec.serial.toString('hex'),
      commonNames: [spec.deviceId],
      sanUris: [deviceUri(spec.deviceId)],
      sanOtherNames: 0,
      notBefore: Date.parse(openssl.validFrom),
      notAfter: Date.parse(openssl.validTo),
      isCa: false,
      keyUsage: KeyUsageBit.digitalSignature,
      extendedKeyUsage: [oidHex('kpClientAuth')],
      authorityKeyIdentifier: ca.keyIdentifier.toString('hex'),
      subjectKeyIdentifier: subjectKeyIdOf(der),
      issuerDer: readCertificateIdentity(ca.certificateDer).subjectDer.toString('hex'),
      profile: { name: 'device', version: 1 },
    });
    expect(read.serialHex).toBe(openssl.serialNumber.toLowerCase());
    expect([read.notBefore.getTime(), read.notAfter.getTime()]).toEqual([spec.notBefore.getTime(), spec.notAfter.getTime()]);
  });

  it('the structure layer: v3, the SPKI as issued, seven extensions with their criticality, views into the same buffer', () => {
    const { der, spec } = device;
    const c = readCertificate(der);
    expect(c.der).toBe(der);
    expect(c.version).toBe(3);
    expect(c.uniqueIdentifiers).toBe(0);
    expect(der.subarray(c.subjectPublicKeyInfo.start, c.subjectPublicKeyInfo.end)).toEqual(spec.spkiDer);
    const oids = c.extensions.map((e) => [der.toString('hex', e.oid.valueStart, e.oid.end), e.critical]);
    expect(oids).toEqual([
      [oidHex('basicConstraints'), true],
      [oidHex('keyUsage'), true],
      [oidHex('extKeyUsage'), false],
      [oidHex('authorityKeyIdentifier'), false],
      [oidHex('subjectKeyIdentifier'), false],
      [oidHex('subjectAltName'), false],
      [oidHex('enrolldProfile'), false],
    ]);
    // The TBSCertificate TLV is exactly what was signed.
    expect(c.tbs.start).toBe(readChildren(der, readTlv(der, 0, der.length))[0]!.start);
  });

  it('the TLS server certificate: serverAuth, DNS and IP names, no SAN URI', () => {
    const der = fromPem(material.serverCertPem, 'CERTIFICATE');
    const read = readCertificateIdentity(der);
    expect({
      commonNames: read.commonNames,
      sanUris: read.sanUris,
      sanOtherNames: read.sanOtherNames,
      isCa: read.isCa,
      keyUsage: read.keyUsage,
      extendedKeyUsage: read.extendedKeyUsage,
      serial: read.serialHex,
      validity: [read.notBefore.getTime(), read.notAfter.getTime()],
      subjectKeyIdentifier: read.subjectKeyIdentifier?.toString('hex'),
    }).toEqual({
      commonNames: ['enrolld.example'],
      sanUris: [],
      sanOtherNames: 5, // localhost, enrolld.example, 127.0.0.1, ::1, 10.0.0.7
      isCa: false,
      keyUsage: KeyUsageBit.digitalSignature,
      extendedKeyUsage: [oidHex('kpServerAuth')],
      serial: new X509Certificate(der).serialNumber.toLowerCase(),
      validity: [Date.parse(new X509Certificate(der).validFrom), Date.parse(new X509Certificate(der).validTo)],
      subjectKeyIdentifier: subjectKeyIdOf(der),
    });
  });

  it('the issuing CA certificate: CA:TRUE, keyCertSign|cRLSign, no EKU, its SKI is the CA key identifier', () => {
    const read = readCertificateIdentity(ca.certificateDer);
    expect([read.isCa, read.keyUsage, read.extendedKeyUsage, read.subjectKeyIdentifier?.toString('hex')]).toEqual([
      true,
      KeyUsageBit.keyCertSign | KeyUsageBit.cRLSign,
      undefined,
      ca.keyIdentifier.toString('hex'),
    ]);
  });
});

/** The certificate with its enrolldProfile extension's value replaced (unsigned: the reader checks no signature). */
function withProfileValue(der: Buffer, value: Buffer): Buffer {
  const [tbs, alg, sig] = readChildren(der, readTlv(der, 0, der.length)).map((t) => der.subarray(t.start, t.end));
  const fields = readChildren(tbs!, readTlv(tbs!, 0, tbs!.length)).map((t) => tbs!.subarray(t.start, t.end));
  const c = readCertificate(der);
  const exts = c.extensions.map((e) => der.subarray(e.oid.start - 2, e.value.end));
  const profileOid = Buffer.from(oidHex('enrolldProfile'), 'hex');
  const replaced = exts.map((e) => (e.includes(profileOid) ? extension(OID.enrolldProfile, false, value) : e));
  return derSequence(derSequence(...fields.slice(0, 7), derExplicit(3, derSequence(...replaced))), alg!, sig!);
}

describe('the enrolldProfile extension: name, version and an optional group', () => {
  it('a certificate of a device with a group names it; OpenSSL and @peculiar/x509 read the certificate; the lint passes', async () => {
    const csr = parseCsr((await makeCsr({ cn: 'press-1' })).pem);
    const { notBefore, notAfter } = ca.deviceValidity(new Date(), 3600, 60);
    const spec: DeviceCertificateSpec = {
      kind: 'device', deviceId: 'press-1', profile: { name: 'gold', version: 3, group: 'line-7' }, serial: generateSerial(), spkiDer: csr.spkiDer, notBefore, notAfter,
    };
    const der = ca.signCertificate(ca.buildDeviceTbs(spec));
    expect(readCertificateIdentity(der).profile).toEqual({ name: 'gold', version: 3, group: 'line-7' });
    expect(new X509Certificate(der).subject).toBe('CN=press-1');
    expect(new x509.X509Certificate(der).getExtension(OID.enrolldProfile)?.critical).toBe(false);
    expect(() => ca.checkIssued(der, spec)).not.toThrow();
    // The lint compares the group too: a spec without it, or with another one, fails.
    expect(() => ca.checkIssued(der, { ...spec, profile: { name: 'gold', version: 3 } })).toThrow(/name the spec profile, version and group/);
    expect(() => ca.checkIssued(der, { ...spec, profile: { name: 'gold', version: 3, group: 'line-8' } })).toThrow(/name the spec profile, version and group/);
    expect(() => ca.checkIssued(device.der, { ...device.spec, profile: { ...device.spec.profile, group: 'line-7' } })).toThrow(/name the spec profile, version and group/);
  });

  it('without a group it is the two-field encoding of certificates issued before groups, which still reads', () => {
    expect(profileExtensionValue({ name: 'device', version: 1 })).toEqual(derSequence(derUtf8String('device'), derInteger(1)));
    expect(readCertificateIdentity(device.der).profile).toEqual({ name: 'device', version: 1 });
    expect(readCertificateIdentity(withProfileValue(device.der, derSequence(derUtf8String('silver'), derInteger(2)))).profile).toEqual({ name: 'silver', version: 2 });
  });

  it.each([
    ['a group that is not a UTF8String', derSequence(derUtf8String('gold'), derInteger(1), derNull()), /enrolldProfile group: expected tag 0xc/],
    ['bytes after the group', derSequence(derUtf8String('gold'), derInteger(1), derUtf8String('line-7'), derUtf8String('x')), /bytes after the enrolldProfile group/],
    ['no version', derSequence(derUtf8String('gold')), /truncated|enrolldProfile version/],
  ])('%s is DerError', (_name, value, message) => {
    expect(thrown(() => readCertificateIdentity(withProfileValue(device.der, value)))).toEqual({ type: 'DerError', message: expect.stringMatching(message) });
  });
});

describe('certificate reader on certificates the CA would never issue', () => {
  it('a certificate without a SAN URI (only a DNS name), and one without any SAN', async () => {
    const pki = await createTestPki();
    const id = deviceIdFor('nouri');
    const dnsOnly = readCertificateIdentity((await pki.device(id, { sanUris: [], sanDns: ['device.example'] })).der);
    expect([dnsOnly.commonNames, dnsOnly.sanUris, dnsOnly.sanOtherNames]).toEqual([[id], [], 1]);
    const noSan = readCertificateIdentity((await pki.device(id, { sanUris: [] })).der);
    expect([noSan.commonNames, noSan.sanUris, noSan.sanOtherNames]).toEqual([[id], [], 0]);
  });

  it('a repeated extension is refused with DerError (RFC 5280 §4.2)', () => {
    const { der } = device;
    const cert = readTlv(der, 0, der.length);
    const [tbs, alg, sig] = readChildren(der, cert).map((t) => der.subarray(t.start, t.end));
    const fields = readChildren(tbs!, readTlv(tbs!, 0, tbs!.length)).map((t) => tbs!.subarray(t.start, t.end));
    const extensionsField = readCertificate(der).extensionsField!;
    const extensionList = readTlv(der, extensionsField.valueStart, extensionsField.end);
    const exts = readChildren(der, extensionList).map((e) => der.subarray(e.start, e.end));
    const doubled = derSequence(derSequence(...fields.slice(0, 7), derExplicit(3, derSequence(...exts, exts[0]!))), alg!, sig!);
    expect(readCertificate(doubled).extensions).toHaveLength(8);
    expect(thrown(() => readCertificateIdentity(doubled))).toEqual({ type: 'DerError', message: 'extension 2.5.29.19 appears twice' });
  });
});

describe('certificate reader on malformed DER', () => {
  it('garbage, an empty buffer and trailing bytes are DerError with a message naming the problem', () => {
    expect(thrown(() => readCertificateIdentity(Buffer.from('not a certificate')))).toEqual({ type: 'DerError', message: expect.stringMatching(/\w/) });
    expect(thrown(() => readCertificateIdentity(Buffer.alloc(0)))).toEqual({ type: 'DerError', message: 'truncated TLV' });
    expect(thrown(() => readCertificate(Buffer.concat([device.der, Buffer.from([0])])))).toEqual({
      type: 'DerError',
      message: 'certificate is not exactly one SEQUENCE',
    });
  });

  it('every truncation is DerError, never another exception type', () => {
    const { der } = device;
    const seen = new Set<string>();
    for (let length = 0; length < der.length; length++) {
      const result = thrown(() => readCertificateIdentity(der.subarray(0, length)));
      seen.add(result?.type ?? 'read');
    }
    expect([...seen]).toEqual(['DerError']);
  });

  it('every single-byte corruption either reads or is DerError, never another exception type', () => {
    const { der } = device;
    const seen = new Set<string>();
    for (let i = 0; i < der.length; i++) {
      for (const value of [0x00, 0x80, 0xff, der[i]! ^ 0x01, der[i]! ^ 0x20]) {
        const corrupted = Buffer.from(der);
        corrupted[i] = value;
        seen.add(thrown(() => readCertificateIdentity(corrupted))?.type ?? 'read');
      }
    }
    expect([...seen].sort()).toEqual(['DerError', 'read']);
  });
});
