// BRK-01 … BRK-04: what the mTLS listener and CONNECT admit. Real TLS sockets, real Postgres. A certificate of ours is
// admitted only when it is on record (the admission registry, docs/architecture.md §7), so the admitted ones are inserted.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { createTestPki, createRootCa, createIntermediateCa, asCa, deviceIdFor, KeyUsage, SERVER_AUTH, type TestPki, type DeviceCert } from '../support/test-pki.js';
import { deviceCreds, insertDevice, probe, report, revocationServiceFor, startTestBroker, type ProbeOutcome, type TestBroker } from '../support/broker-harness.js';
import { refusalOf } from '../support/refusal.js';

const outcomesOf = (cases: Record<string, ProbeOutcome>) => Object.fromEntries(Object.entries(cases).map(([k, v]) => [k, refusalOf(v)]));

describe('broker certificate validation', () => {
  let db: TestDatabase;
  let pki: TestPki;
  let broker: TestBroker;

  beforeAll(async () => {
    db = await createTestDatabase();
    pki = await createTestPki();
    // A CRL exists from the start, as in production (the API process builds one at boot).
    await revocationServiceFor(db.pool, pki).ensureCrlCurrent();
    broker = await startTestBroker(db.url, db.pool, pki);
  });
  afterAll(async () => {
    await broker?.stop();
    await db?.drop();
  });

  async function attempt(device: DeviceCert, cert?: string) {
    return probe(broker.port, { ...deviceCreds(pki, device), ...(cert ? { cert } : {}) }, device.deviceId);
  }

  it('BRK-01 validity window: expired and not-yet-valid refused with CONNACK 5, the last second and a valid cert accepted', async () => {
    const now = Date.now();
    const valid = await pki.device(deviceIdFor('valid'));
    const expired = await pki.device(deviceIdFor('expired'), { notBefore: new Date(now - 3600_000), notAfter: new Date(now - 1000) });
    const future = await pki.device(deviceIdFor('future'), { notBefore: new Date(now + 60_000), notAfter: new Date(now + 3600_000) });
    // RFC 5280 §4.1.2.5: notAfter is inclusive. Ends a few seconds from now so the attempt lands inside its last second(s).
    const lastSecond = await pki.device(deviceIdFor('edge'), { notBefore: new Date(now - 3600_000), notAfter: new Date(now + 3000) });
    for (const device of [valid, expired, future, lastSecond]) await insertDevice(db.pool, device);
    const t0 = performance.now();
    const results = {
      valid: await attempt(valid),
      expired: await attempt(expired),
      notYetValid: await attempt(future),
      lastSecond: await attempt(lastSecond),
    };
    const rejectMs = performance.now() - t0;
    const outcomes = outcomesOf(results);
    const expected = { valid: 'connack 0', expired: 'connack 5', notYetValid: 'connack 5', lastSecond: 'connack 0' };
    report('BRK-01', Object.entries(expected).every(([k, v]) => outcomes[k] === v), { outcomes, fourAttemptsMs: Math.round(rejectMs) });
    expect(outcomes).toEqual(expected);
  });

  it('BRK-02 trust anchor: other CA, self-signed, missing or extra intermediates, a sibling issuing CA: none admitted', async () => {
    const id = deviceIdFor('anchor');
    const other = await createRootCa(`other root ${id}`);
    const otherIssuing = await createIntermediateCa(other, pki.issuing.name); // same subject as ours
    const fromOther = await pki.deviceFrom(otherIssuing, id);
    const selfSignedRoot = await createRootCa(id); // CN = device id, self-signed
    const selfSigned = await pki.deviceFrom(selfSignedRoot, id);
    // A second intermediate under OUR root (another environment's issuing CA): it chains to the root, and the listener's
    // issuer pin closes it right after the handshake.
    const sibling = await createIntermediateCa(pki.root, `sibling ${id}`);
    const fromSibling = await pki.deviceFrom(sibling, id);
    const ours = await pki.device(id);
    await insertDevice(db.pool, ours);
    const cases = {
      otherCaSameSubject: await attempt(fromOther, fromOther.chainPem),
      selfSignedWithDeviceSubject: await attempt(selfSigned, selfSigned.certPem),
      missingIntermediateOtherCa: await attempt(fromOther, fromOther.certPem),
      extraUntrustedIntermediates: await attempt(fromOther, fromOther.certPem + otherIssuing.certPem + other.certPem),
      siblingIssuingCa: await attempt(fromSibling, fromSibling.chainPem),
      ownLeafOnly: await attempt(ours, ours.certPem),
    };
    const outcomes = outcomesOf(cases);
    const { ownLeafOnly, ...foreign } = outcomes;
    // Refused at TLS (no CRL from that CA while CRL checking is on) or, failing that, at CONNECT (issuer pinned).
    const notRefused = Object.entries(foreign).filter(([, v]) => v !== 'tls-closed' && v !== 'connack 5').map(([k]) => k);
    report('BRK-02', notRefused.length === 0 && ownLeafOnly === 'connack 0', { notRefused: notRefused.length, outcomes });
    expect(notRefused).toEqual([]);
    expect(outcomes.siblingIssuingCa).toBe('tls-closed');
    // Control: a device may send only its leaf; the broker holds the issuing CA.
    expect(ownLeafOnly).toBe('connack 0');
  });

  it('BRK-03 purpose and constraints: serverAuth-only, no EKU, no digitalSignature, CA:TRUE leaf and its issue, unknown critical extension', async () => {
    const id = deviceIdFor('purpose');
    const serverAuthOnly = await pki.device(id, { eku: [SERVER_AUTH] });
    const noEku = await pki.device(id, { eku: null });
    const noDigitalSignature = await pki.device(id, { keyUsage: KeyUsage.keyAgreement });
    const caLeaf = await pki.device(id, { isCa: true });
    const rogueCa = await asCa(`rogue ${id}`, caLeaf);
    const fromCaLeaf = await pki.deviceFrom(rogueCa, id);
    const unknownCritical = await pki.device(id, { unknownCriticalExtension: true });
    const cnMismatch = await pki.device(id, { cn: `${id}x` });
    const noSanUri = await pki.device(id, { sanUris: [] });
    const cases = {
      serverAuthOnly: await attempt(serverAuthOnly),
      noEku: await attempt(noEku),
      noDigitalSignature: await attempt(noDigitalSignature),
      caTrueLeaf: await attempt(caLeaf),
      issuedByCaTrueLeaf: await attempt(fromCaLeaf, fromCaLeaf.certPem + caLeaf.certPem + pki.issuing.certPem),
      unknownCriticalExtension: await attempt(unknownCritical),
      cnDiffersFromSanUri: await attempt(cnMismatch),
      noSanUri: await attempt(noSanUri),
    };
    const outcomes = outcomesOf(cases);
    const notRefused = Object.entries(outcomes).filter(([, v]) => v !== 'tls-closed' && v !== 'connack 5').map(([k]) => k);
    report('BRK-03', notRefused.length === 0, { notRefused: notRefused.length, outcomes });
    expect(notRefused).toEqual([]);
  });

  it('refuses revoked certificates at CONNECT with CONNACK 5 on a new handshake (BRK-04)', async () => {
    const device = await pki.device(deviceIdFor('crl'));
    await insertDevice(db.pool, device);
    expect(await attempt(device)).toMatchObject({ kind: 'connack', code: 0 });
    const service = revocationServiceFor(db.pool, pki);
    await service.revokeDevice(device.deviceId, { reason: 'keyCompromise', actor: 'test' });
    await broker.broker.resync();
    expect(refusalOf(await attempt(device))).toBe('connack 5');
  });
});
