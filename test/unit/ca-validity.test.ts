import 'reflect-metadata';
import { beforeAll, describe, expect, it } from '@jest/globals';
import * as x509 from '@peculiar/x509';
import { deviceValidity, generateSerial, MAX_BACKDATE_SECONDS, parseCsr } from '@enrolld/core/ca/index.js';
import type { DeviceIssuingCa } from '@enrolld/core/ca/index.js';
import { readChildren, readTlv, toPem } from '@enrolld/core/ca/der.js';
import { buildCsr, createTestIssuingCa, rejectionOf } from '../support/csr-factory.js';
import { opensslVerify, opensslVerifyClientCert } from '../support/openssl.js';

// CERT-03 (RFC 5280 §4.1.2.5; Let's Encrypt 2021 "90 days + 1 s"; Boulder TestIssueCertificate_ValidPastIssuer).

const DAY = 86_400;
let ca: DeviceIssuingCa;
let spkiDer: Buffer;
beforeAll(async () => {
  ({ ca } = await createTestIssuingCa());
  spkiDer = parseCsr(buildCsr({ cn: 'v' }).der).spkiDer;
});

function issue(issuer: DeviceIssuingCa, notBefore: Date, notAfter: Date, deviceId = 'validity-1') {
  const spec = { kind: 'device' as const, profile: { name: 'device', version: 1 }, deviceId, serial: generateSerial(), spkiDer, notBefore, notAfter };
  const der = issuer.signCertificate(issuer.buildDeviceTbs(spec));
  issuer.checkIssued(der, spec);
  return der;
}

describe('CERT-03 validity is exact', () => {
  it.each([1, 60, 3600, 90 * DAY, 397 * DAY])('lifetime %i s: notAfter − notBefore + 1 s == lifetime in the issued certificate', async (lifetime) => {
    const now = new Date(Date.now() - 123); // not on a second boundary
    const backdate = 300;
    const { notBefore, notAfter } = ca.deviceValidity(now, lifetime, backdate);
    const cert = new x509.X509Certificate(issue(ca, notBefore, notAfter));
    expect((cert.notAfter.getTime() - cert.notBefore.getTime()) / 1000 + 1).toBe(lifetime);
    // Backdate: notBefore is now truncated to the second minus the backdate, never more.
    expect(cert.notBefore.getTime()).toBe(Math.floor(now.getTime() / 1000) * 1000 - backdate * 1000);
    expect(now.getTime() - cert.notBefore.getTime()).toBeLessThan((backdate + 1) * 1000);
  });

  it('every certificate of a batch issued over time has the exact lifetime and a backdate ≤ the configured skew', () => {
    const lifetime = 30 * DAY;
    const backdate = 120;
    let maxBackdateSeen = 0;
    for (let i = 0; i < 200; i++) {
      const now = new Date(Date.now() + i * 7919);
      const { notBefore, notAfter } = ca.deviceValidity(now, lifetime, backdate);
      const cert = new x509.X509Certificate(issue(ca, notBefore, notAfter));
      expect((cert.notAfter.getTime() - cert.notBefore.getTime()) / 1000 + 1).toBe(lifetime);
      maxBackdateSeen = Math.max(maxBackdateSeen, (now.getTime() - cert.notBefore.getTime()) / 1000);
    }
    // notBefore is at second precision (floor), so the backdate seen is up to the configured skew + < 1 s.
    process.stdout.write(`CERT-03: 200/200 exact, max backdate seen ${maxBackdateSeen.toFixed(3)} s (configured ${backdate} s + sub-second truncation)\n`);
    expect(maxBackdateSeen).toBeLessThan(backdate + 1);
  });

  it(`accepts a backdate up to ${MAX_BACKDATE_SECONDS} s and refuses more, negative or fractional`, () => {
    expect(() => ca.deviceValidity(new Date(), DAY, MAX_BACKDATE_SECONDS)).not.toThrow();
    for (const bad of [MAX_BACKDATE_SECONDS + 1, -1, 1.5]) expect(rejectionOf(() => ca.deviceValidity(new Date(), DAY, bad)).kind).toBe('internal');
    for (const bad of [0, -5, 2.5]) expect(rejectionOf(() => ca.deviceValidity(new Date(), bad, 0)).kind).toBe('internal');
  });

  it('buildDeviceTbs refuses validity that is not whole seconds or inverted', () => {
    const nb = new Date(Math.floor(Date.now() / 1000) * 1000);
    expect(rejectionOf(() => ca.buildDeviceTbs({ kind: 'device' as const, profile: { name: 'device', version: 1 }, deviceId: 'x', serial: generateSerial(), spkiDer, notBefore: new Date(nb.getTime() + 1), notAfter: new Date(nb.getTime() + 10_000) })).kind).toBe('internal');
    expect(rejectionOf(() => ca.buildDeviceTbs({ kind: 'device' as const, profile: { name: 'device', version: 1 }, deviceId: 'x', serial: generateSerial(), spkiDer, notBefore: nb, notAfter: new Date(nb.getTime() - 1000) })).kind).toBe('internal');
  });
});

describe('CERT-03 issuance near the issuing CA’s expiry is refused', () => {
  let nearExpiry: DeviceIssuingCa;
  beforeAll(async () => {
    // The intermediate lives 5 years from its (backdated) start, so this one expires in ~10 days.
    const now = new Date(Date.now() - 5 * 365.25 * DAY * 1000 + 10 * DAY * 1000);
    ({ ca: nearExpiry } = await createTestIssuingCa({ now }));
  });

  it('a lifetime that would outlive the issuing CA is refused as unavailable, with the dates in the log detail', () => {
    const error = rejectionOf(() => nearExpiry.deviceValidity(new Date(), 30 * DAY, 60));
    expect(error.kind).toBe('unavailable');
    expect(error.detail).toMatch(/issuing CA must be renewed/);
  });

  it('the free deviceValidity takes the IssuingCa (or its notAfter) and refuses the same way', () => {
    expect(rejectionOf(() => deviceValidity(new Date(), 30 * DAY, 60, nearExpiry)).kind).toBe('unavailable');
    expect(rejectionOf(() => deviceValidity(new Date(), 30 * DAY, 60, nearExpiry.notAfter)).kind).toBe('unavailable');
    expect(() => deviceValidity(new Date(), 5 * DAY, 60, nearExpiry)).not.toThrow();
  });

  it('a notAfter exactly at the issuer notAfter is allowed; one second later is refused by buildDeviceTbs', async () => {
    const notAfter = nearExpiry.notAfter;
    const notBefore = new Date(Math.floor(Date.now() / 1000) * 1000);
    const der = issue(nearExpiry, notBefore, notAfter);
    await expect(opensslVerifyClientCert(toPem('CERTIFICATE', der), nearExpiry.chainPem)).resolves.toBeUndefined();
    expect(
      rejectionOf(() => nearExpiry.buildDeviceTbs({ kind: 'device' as const, profile: { name: 'device', version: 1 }, deviceId: 'x', serial: generateSerial(), spkiDer, notBefore, notAfter: new Date(notAfter.getTime() + 1000) })),
    ).toEqual({ kind: 'internal', detail: expect.stringMatching(/past the issuing CA notAfter/) });
  });
});

describe('CERT-03 time encoding: UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', () => {
  it('a validity straddling 2050-01-01 uses UTCTime then GeneralizedTime, and openssl accepts it at both ends', async () => {
    const { ca: future } = await createTestIssuingCa({ now: new Date('2047-06-01T00:00:00Z') });
    const notBefore = new Date('2049-12-31T23:59:00Z');
    const notAfter = new Date('2050-01-01T00:00:59Z');
    const der = issue(future, notBefore, notAfter);
    const cert = readTlv(der, 0, der.length);
    const tbs = readChildren(der, cert)[0]!;
    const validity = readChildren(der, tbs)[4]!;
    const [nb, na] = readChildren(der, validity);
    expect(der.toString('latin1', nb!.start, nb!.end)).toBe('\x17\x0d491231235900Z');
    expect(der.toString('latin1', na!.start, na!.end)).toBe('\x18\x0f20500101000059Z');
    const parsed = new x509.X509Certificate(der);
    expect(parsed.notBefore.toISOString()).toBe(notBefore.toISOString());
    expect(parsed.notAfter.toISOString()).toBe(notAfter.toISOString());
    for (const at of ['2049-12-31T23:59:30Z', '2050-01-01T00:00:30Z']) {
      const r = await opensslVerify(toPem('CERTIFICATE', der), future.chainPem, { extraArgs: ['-attime', String(Date.parse(at) / 1000)] });
      expect(r.stdout).toMatch(/: OK\s*$/);
    }
    const late = await opensslVerify(toPem('CERTIFICATE', der), future.chainPem, { extraArgs: ['-attime', String(Date.parse('2050-01-01T00:01:00Z') / 1000)] });
    expect(late.code).not.toBe(0); // notAfter is inclusive to the second, and no later
  });
});
