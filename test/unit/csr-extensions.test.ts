import 'reflect-metadata';
import { beforeAll, describe, expect, it } from '@jest/globals';
import * as x509 from '@peculiar/x509';
import { deviceUri } from '@enrolld/protocol';
import { assertCsrNamesIdentity, generateSerial, parseCsr } from '@enrolld/core/ca/index.js';
import type { DeviceIssuingCa } from '@enrolld/core/ca/index.js';
import { derBoolean, derExplicit, derImplicit, derInteger, derOid, derSequence, toPem } from '@enrolld/core/ca/der.js';
import { OID } from '@enrolld/core/ca/oids.js';
import {
  buildCsr,
  createTestIssuingCa,
  extension,
  extensionRequestAttribute,
  rejectionOf,
  sanExtension,
} from '../support/csr-factory.js';
import { opensslVerifyClientCert } from '../support/openssl.js';

// CSR-08: requested extensions are ignored (the profile is fixed), and a duplicated extension OID is refused.

const id = 'gw-0007';
let ca: DeviceIssuingCa;
beforeAll(async () => {
  ({ ca } = await createTestIssuingCa());
});

const KU_KEY_CERT_SIGN = Buffer.from([0x03, 0x02, 0x02, 0x04]); // bit 5 keyCertSign
const requested: Array<[string, Buffer]> = [
  ['basicConstraints CA:TRUE, pathLen 5 (critical)', extension(OID.basicConstraints, true, derSequence(derBoolean(true), derInteger(5)))],
  ['keyUsage keyCertSign + cRLSign (critical)', extension(OID.keyUsage, true, KU_KEY_CERT_SIGN)],
  ['extKeyUsage serverAuth + anyExtendedKeyUsage', extension(OID.extKeyUsage, false, derSequence(derOid(OID.kpServerAuth), derOid('2.5.29.37.0')))],
  ['nameConstraints permitting example.com (critical)', extension(OID.nameConstraints, true, derSequence(derExplicit(0, derSequence(derImplicit(2, Buffer.from('example.com'))))))],
  ['an unknown critical extension', extension('1.3.6.1.4.1.55555.9.9', true, Buffer.from([0x05, 0x00]))],
  ['subjectKeyIdentifier of its choosing', extension(OID.subjectKeyIdentifier, false, Buffer.from([0x04, 0x02, 0xde, 0xad]))],
];

describe('CSR-08 requested extensions are ignored', () => {
  it.each(requested)('%s → issued certificate keeps the fixed profile and passes openssl', async (_name, ext) => {
    const csr = buildCsr({ cn: id, sans: [{ type: 'uri', value: deviceUri(id) }], extensions: [ext] });
    const parsed = parseCsr(csr.der);
    assertCsrNamesIdentity(parsed, 'device', id);
    const { notBefore, notAfter } = ca.deviceValidity(new Date(), 86400, 60);
    const spec = { kind: 'device' as const, profile: { name: 'device', version: 1 }, deviceId: id, serial: generateSerial(), spkiDer: parsed.spkiDer, notBefore, notAfter };
    const der = ca.signCertificate(ca.buildDeviceTbs(spec));
    ca.checkIssued(der, spec);
    const cert = new x509.X509Certificate(der);
    expect(cert.extensions.map((e) => e.type).sort()).toEqual([OID.enrolldProfile, '2.5.29.14', '2.5.29.15', '2.5.29.17', '2.5.29.19', '2.5.29.35', '2.5.29.37'].sort());
    expect(cert.getExtension(x509.BasicConstraintsExtension)!.ca).toBe(false);
    expect(cert.getExtension(x509.KeyUsagesExtension)!.usages).toBe(x509.KeyUsageFlags.digitalSignature);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).toEqual([OID.kpClientAuth]);
    expect(cert.extensions.some((e) => e.critical && !['2.5.29.19', '2.5.29.15'].includes(e.type))).toBe(false);
    await expect(opensslVerifyClientCert(toPem('CERTIFICATE', der), ca.chainPem)).resolves.toBeUndefined();
  });

  it('all of them at once', () => {
    const csr = buildCsr({ cn: id, extensions: requested.map(([, e]) => e) });
    expect(() => assertCsrNamesIdentity(parseCsr(csr.der), 'device', id)).not.toThrow();
  });
});

describe('CSR-08 malformed extension requests', () => {
  it.each<[string, () => Buffer, RegExp]>([
    ['a duplicated extension OID', () => buildCsr({ cn: id, extensions: [requested[2]![1], requested[2]![1]] }).der, /duplicate extension 2\.5\.29\.37/],
    [
      'a duplicated SAN with different contents',
      () => buildCsr({ cn: id, sans: [{ type: 'uri', value: deviceUri(id) }], extensions: [sanExtension([{ type: 'dns', value: 'x.example' }])] }).der,
      /duplicate extension 2\.5\.29\.17/,
    ],
    [
      'two extensionRequest attributes',
      () => buildCsr({ cn: id, attributes: [extensionRequestAttribute([requested[0]![1]]), extensionRequestAttribute([requested[1]![1]])] }).der,
      /more than one extensionRequest/,
    ],
    ['an empty subjectAltName', () => buildCsr({ cn: id, extensions: [extension(OID.subjectAltName, false, derSequence())] }).der, /empty subjectAltName/],
    ['a SAN with an unknown GeneralName tag', () => buildCsr({ cn: id, extensions: [extension(OID.subjectAltName, false, derSequence(derImplicit(9, Buffer.from('x'))))] }).der, /GeneralName/],
    ['a SAN iPAddress of 5 octets', () => buildCsr({ cn: id, extensions: [extension(OID.subjectAltName, false, derSequence(derImplicit(7, Buffer.from([1, 2, 3, 4, 5]))))] }).der, /iPAddress/],
    ['a SAN that is not DER inside the OCTET STRING', () => buildCsr({ cn: id, extensions: [extension(OID.subjectAltName, false, Buffer.from([0x30, 0x80, 0x86, 0x01, 0x61, 0x00, 0x00]))] }).der, /indefinite/],
  ])('%s → bad-csr', (_name, make, detail) => {
    expect(rejectionOf(() => parseCsr(make()))).toEqual({ kind: 'bad-csr', detail: expect.stringMatching(detail) });
  });
});
