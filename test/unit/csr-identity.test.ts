import { describe, expect, it } from '@jest/globals';
import { deviceUri } from '@enrolld/protocol';
import { assertCsrNamesIdentity, parseCsr } from '@enrolld/core/ca/index.js';
import { derExplicit, derOid, derPrintableString, derSequence, derSet, derUtf8String, tlv } from '@enrolld/core/ca/der.js';
import { OID } from '@enrolld/core/ca/oids.js';
import { buildCsr, rejectionOf } from '../support/csr-factory.js';
import type { CsrSpec } from '../support/csr-factory.js';

// CSR-06: identity comes from the server's record. A CSR may have an empty subject or exactly CN=<id>, and no SAN
// or exactly the device URI; anything else is identity-mismatch with a detail naming what was wrong.

const id = 'sensor-0042';
const check = (spec: CsrSpec) => () => assertCsrNamesIdentity(parseCsr(buildCsr(spec).der), 'device', id);

describe('CSR-06 identity: accepted', () => {
  it.each<[string, CsrSpec]>([
    ['empty subject, no SAN', {}],
    ['CN=<id>', { cn: id }],
    ['SAN URI only', { sans: [{ type: 'uri', value: deviceUri(id) }] }],
    ['CN=<id> and SAN URI', { cn: id, sans: [{ type: 'uri', value: deviceUri(id) }] }],
    ['CN=<id> as PrintableString', { subjectDer: derSequence(derSet(derSequence(derOid(OID.commonName), derPrintableString(id)))) }],
  ])('%s', (_name, spec) => {
    expect(check(spec)).not.toThrow();
  });
});

describe('CSR-06 identity: rejected', () => {
  it.each<[string, CsrSpec, RegExp]>([
    ['CN of another device', { cn: 'sensor-0043' }, /subject CN "sensor-0043" is not the device id "sensor-0042"/],
    ['CN with different case', { cn: 'SENSOR-0042' }, /subject CN "SENSOR-0042"/],
    ['CN with trailing space', { cn: `${id} ` }, /subject CN "sensor-0042 "/],
    ['CN with a NUL', { cn: `${id}\u0000` }, /subject CN/],
    ['CN spelled as an IP', { cn: '10.0.0.1' }, /subject CN "10\.0\.0\.1"/],
    ['two CNs (both the id)', { cn: id, subjectAttributes: [{ oid: OID.commonName, value: id }] }, /2 CNs/],
    ['an extra subject attribute (O)', { cn: id, subjectAttributes: [{ oid: '2.5.4.10', value: 'Acme' }] }, /1 attribute\(s\) besides CN/],
    ['SAN URI of another device', { sans: [{ type: 'uri', value: deviceUri('sensor-0043') }] }, /URI "urn:enrolld:device:sensor-0043"/],
    ['SAN URI with another scheme', { sans: [{ type: 'uri', value: `https://evil.example/${id}` }] }, /URI "https:/],
    ['duplicate SAN URI', { sans: [{ type: 'uri', value: deviceUri(id) }, { type: 'uri', value: deviceUri(id) }] }, /2 URIs/],
    ['extra DNS SAN', { cn: id, sans: [{ type: 'uri', value: deviceUri(id) }, { type: 'dns', value: 'broker.example' }] }, /DNS names are not allowed \("broker\.example"\)/],
    ['IP SAN', { sans: [{ type: 'ip', value: '127.0.0.1' }] }, /IP addresses are not allowed \("127\.0\.0\.1"\)/],
    ['IPv6 SAN', { sans: [{ type: 'ip', value: '::1' }] }, /IP addresses are not allowed \("0:0:0:0:0:0:0:1"\)/],
    ['email SAN', { sans: [{ type: 'email', value: 'a@b.example' }] }, /email addresses are not allowed/],
    ['otherName SAN (UPN)', { sans: [{ type: 'other', der: derExplicit(0, derOid('1.3.6.1.4.1.311.20.2.3'), derExplicit(0, derUtf8String(id))) }] }, /1 name\(s\) of another type/],
    ['CN right but SAN URI wrong', { cn: id, sans: [{ type: 'uri', value: deviceUri('x') }] }, /URI "urn:enrolld:device:x"/],
  ])('%s', (_name, spec, detail) => {
    expect(rejectionOf(check(spec))).toEqual({ kind: 'identity-mismatch', detail: expect.stringMatching(detail) });
  });

  it('truncates a long CN in the detail instead of echoing it', () => {
    const long = 'a'.repeat(2000);
    const { detail } = rejectionOf(check({ cn: long }));
    expect(detail.length).toBeLessThan(400);
  });

  it('refuses an invalid record device id as internal (a server bug, not a client fault)', () => {
    expect(rejectionOf(() => assertCsrNamesIdentity(parseCsr(buildCsr({}).der), 'device', 'Not/Valid')).kind).toBe('internal');
  });

  it('BMPString CN is decoded before comparison', () => {
    const bmp = tlv(0x1e, Buffer.from(id, 'utf16le').swap16());
    expect(check({ subjectDer: derSequence(derSet(derSequence(derOid(OID.commonName), bmp))) })).not.toThrow();
  });
});
