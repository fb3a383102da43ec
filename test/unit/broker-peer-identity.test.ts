// The broker's DER field reader agrees with OpenSSL (node:crypto X509Certificate) on the certificates it sees.
import { describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { canonicalSerial } from '@enrolld/protocol';
import { identityFromCertificate, issuerPinOf, peerCertificateFromSession } from '../../server/src/mqtt/peer-identity.js';
import { createTestPki, deviceIdFor, KeyUsage, SERVER_AUTH } from '../support/test-pki.js';

describe('peer identity from the certificate DER', () => {
  it('reads id, serial and validity as OpenSSL does, and applies the device profile (a certificate without enrolldProfile is a `device`)', async () => {
    const pki = await createTestPki();
    const pin = issuerPinOf(pki.issuing.certPem);
    const id = deviceIdFor('unit');
    const device = await pki.device(id, { notAfter: new Date(Date.UTC(2049, 11, 31, 23, 59, 59)), serial: '00ff' + '11'.repeat(14) });
    const result = identityFromCertificate(device.der, pin);
    const x = new X509Certificate(device.der);
    expect(result).toEqual({
      ok: true,
      identity: {
        kind: 'device',
        deviceId: id,
        profile: 'device',
        profileVersion: 1,
        serial: canonicalSerial(x.serialNumber),
        notBefore: Date.parse(x.validFrom),
        notAfter: Date.parse(x.validTo),
      },
    });
    const refusals = {
      serverAuth: identityFromCertificate((await pki.device(id, { eku: [SERVER_AUTH] })).der, pin),
      noEku: identityFromCertificate((await pki.device(id, { eku: null })).der, pin),
      noKu: identityFromCertificate((await pki.device(id, { keyUsage: null })).der, pin),
      keyAgreementOnly: identityFromCertificate((await pki.device(id, { keyUsage: KeyUsage.keyAgreement })).der, pin),
      ca: identityFromCertificate((await pki.device(id, { isCa: true })).der, pin),
      cnMismatch: identityFromCertificate((await pki.device(id, { cn: 'other' })).der, pin),
      twoUris: identityFromCertificate((await pki.device(id, { sanUris: [`urn:enrolld:device:${id}`, `urn:enrolld:device:${id}`] })).der, pin),
      serviceWithoutProfile: identityFromCertificate((await pki.device(id, { sanUris: [`urn:enrolld:service:${id}`] })).der, pin),
      otherKind: identityFromCertificate((await pki.device(id, { sanUris: [`urn:enrolld:gateway:${id}`] })).der, pin),
      badId: identityFromCertificate((await pki.device('Upper', {})).der, pin),
      otherIssuer: identityFromCertificate((await pki.deviceFrom(pki.root, id)).der, pin),
    };
    for (const [name, r] of Object.entries(refusals)) expect([name, r.ok]).toEqual([name, false]);
  });

  it('reads a service certificate: its kind from the SAN URI and its profile from the enrolldProfile extension', async () => {
    const pki = await createTestPki();
    const pin = issuerPinOf(pki.issuing.certPem);
    const service = await pki.device('ingest', { sanUris: ['urn:enrolld:service:ingest'], profile: { name: 'readonly', version: 7 } });
    expect(identityFromCertificate(service.der, pin)).toMatchObject({ ok: true, identity: { kind: 'service', deviceId: 'ingest', profile: 'readonly', profileVersion: 7 } });
    const gold = await pki.device('sensor-9', { profile: { name: 'gold', version: 2 } });
    expect(identityFromCertificate(gold.der, pin)).toMatchObject({ ok: true, identity: { kind: 'device', profile: 'gold', profileVersion: 2, group: undefined } });
  });

  it('reads the device group from the enrolldProfile extension, and refuses a certificate naming a group outside the identity rule', async () => {
    const pki = await createTestPki();
    const pin = issuerPinOf(pki.issuing.certPem);
    const grouped = await pki.device('press-1', { profile: { name: 'gold', version: 2, group: 'line-7' } });
    expect(identityFromCertificate(grouped.der, pin)).toMatchObject({ ok: true, identity: { deviceId: 'press-1', profile: 'gold', group: 'line-7' } });
    const bad = await pki.device('press-2', { profile: { name: 'gold', version: 2, group: 'line/#' } });
    expect(identityFromCertificate(bad.der, pin)).toEqual({ ok: false, reason: 'the certificate names an invalid group' });
  });

  it('finds nothing in bytes that are not a session', () => {
    expect(peerCertificateFromSession(Buffer.from('3003020101', 'hex'))).toBeUndefined();
    expect(peerCertificateFromSession(Buffer.alloc(0))).toBeUndefined();
  });
});
