import 'reflect-metadata';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { createPrivateKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { deviceUri } from '@enrolld/protocol';
import {
  assertCsrNamesDevice,
  createCaMaterial,
  createIssuingCa,
  generateSerial,
  parseCsr,
  serialHex,
} from '../../server/src/core/ca/index.js';
import type { CaMaterial, DeviceCertificateSpec, DeviceIssuingCa } from '../../server/src/core/ca/index.js';
import { toPem } from '../../server/src/core/ca/der.js';
import { makeCsr, randomDeviceId } from '../support/csr-factory.js';
import { opensslVerifyClientCert, opensslVerify } from '../support/openssl.js';

x509.cryptoProvider.set(globalThis.crypto);

let material: CaMaterial;
let ca: DeviceIssuingCa;

beforeAll(async () => {
  material = await createCaMaterial({ now: new Date(), serverNames: ['enrolld.example', '10.0.0.7'] });
  ca = createIssuingCa({
    issuingCertificatePem: material.issuingCertPem,
    issuingPrivateKey: createPrivateKey(material.issuingKeyPem),
    rootCertificatePem: material.rootCertPem,
  });
});

async function issue(deviceId: string, lifetime = 30 * 86400, backdate = 300) {
  const csr = parseCsr((await makeCsr({ cn: deviceId })).pem);
  assertCsrNamesDevice(csr, deviceId);
  const { notBefore, notAfter } = ca.deviceValidity(new Date(), lifetime, backdate);
  const spec: DeviceCertificateSpec = { deviceId, serial: generateSerial(), spkiDer: csr.spkiDer, notBefore, notAfter };
  const der = ca.signCertificate(ca.buildDeviceTbs(spec));
  ca.checkIssued(der, spec);
  return { der, spec, csr };
}

describe('CERT-04 issued device certificate profile', () => {
  it('parses with @peculiar/x509 and has exactly the DESIGN.md §2 profile', async () => {
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
    expect(oids).toEqual(['2.5.29.14', '2.5.29.15', '2.5.29.17', '2.5.29.19', '2.5.29.35', '2.5.29.37'].sort());
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
