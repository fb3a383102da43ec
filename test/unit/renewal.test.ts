// The renewal use case (core/src/renewal/renewal.ts) on the in-memory stores, a real issuing CA and a manual clock:
// the current certificate must be this CA's, on record, valid and unrevoked; one successor per certificate (the same
// CSR gets it again, another CSR is a conflict naming it); the expired-certificate policy; the key must be new.
import { beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import type { DeviceIssuingCa } from '@enrolld/core/ca/index.js';
import { createEnrollment } from '@enrolld/core/enroll.js';
import { EnrollError } from '@enrolld/core/errors.js';
import type { ExpiredRenewalPolicy } from '@enrolld/core/renewal/expired-policy.js';
import type { PendingSupersession } from '@enrolld/core/renewal/ports.js';
import { createRenewal, type RenewalCredential } from '@enrolld/core/renewal/renewal.js';
import { hashSecret } from '@enrolld/core/secrets.js';
import { createTestIssuingCa, makeCsr, randomDeviceId } from '../support/csr-factory.js';
import { createManualClock } from '../support/fakes/clock.js';
import { createMemoryEnrollmentStore, createMemoryTokenStore } from '../support/fakes/enrollment.js';
import { createMemoryTables, type MemoryTables } from '../support/fakes/memory-tables.js';
import { createMemoryRenewalStore } from '../support/fakes/renewal.js';
import { createMemoryRevocationStore } from '../support/fakes/revocation.js';
import { singleEnvironmentCas } from '../support/fakes/environments.js';

let ca: DeviceIssuingCa;
let foreignCa: DeviceIssuingCa;
beforeAll(async () => {
  ca = (await createTestIssuingCa()).ca;
  foreignCa = (await createTestIssuingCa()).ca;
});

const LIFETIME_SECONDS = 3600;
const basePolicy = {
  certificateLifetimeSeconds: LIFETIME_SECONDS,
  backdateSeconds: 60,
  renewalWindowFraction: 1 / 3,
  inFlightSeconds: 30,
  waitForInFlightMs: 0,
  popLinking: 'off' as const,
};

/** A device enrolled with `issuer` on `tables`; returns its certificate as the TLS layer would present it. */
async function enrolled(tables: MemoryTables, issuer: DeviceIssuingCa) {
  const deviceId = randomDeviceId('renew');
  const token = `token-${deviceId}`;
  await createMemoryTokenStore(tables).createTokens([{ kind: 'device', deviceId, tokenHash: hashSecret(token), expiresAt: new Date(tables.clock.now().getTime() + 3600_000), profile: 'device' }], 'unit');
  const csr = await makeCsr({ cn: deviceId });
  const policy = { certificateLifetimeSeconds: LIFETIME_SECONDS, backdateSeconds: 60, renewalWindowFraction: 1 / 3, retryWindowSeconds: 600, inFlightSeconds: 30 };
  const { response } = await createEnrollment({ store: createMemoryEnrollmentStore(tables), cas: singleEnvironmentCas(issuer), clock: tables.clock, policy }).enroll({ token, csr: csr.pem });
  const der = new X509Certificate(response.certificate).raw;
  return { deviceId, serial: response.serial, der, privateKey: csr.privateKey, credential: { kind: 'certificate', der } as RenewalCredential };
}

async function setup(expired: ExpiredRenewalPolicy = { mode: 'refuse', graceSeconds: 0 }) {
  const clock = createManualClock();
  const tables = createMemoryTables(clock);
  const renewed: PendingSupersession[] = [];
  const outcomes: string[] = [];
  const renewal = createRenewal({
    store: createMemoryRenewalStore(tables),
    cas: singleEnvironmentCas(ca),
    clock,
    policy: { ...basePolicy, expired },
    onRenewed: (r) => renewed.push(r),
    onOutcome: (_transport, outcome) => outcomes.push(outcome),
  });
  const device = await enrolled(tables, ca);
  return { clock, tables, renewal, device, renewed, outcomes };
}

const errorOf = async (promise: Promise<unknown>): Promise<EnrollError> => {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  if (!(error instanceof EnrollError)) throw new Error(`expected an EnrollError, got ${String(error)}`);
  return error;
};

describe('renew', () => {
  it('issues a successor for the new key, linked to the current certificate, and announces it', async () => {
    const { renewal, device, tables, renewed, outcomes } = await setup();
    const csr = await makeCsr({ cn: device.deviceId });
    const result = await renewal.renew({ credential: device.credential, csr: csr.pem, transport: 'rest' });
    expect(result.replayed).toBe(false);
    expect(result.predecessorSerial).toBe(device.serial);
    expect(result.response.deviceId).toBe(device.deviceId);
    expect(new X509Certificate(result.response.certificate).checkPrivateKey(csr.privateKey)).toBe(true);
    expect(tables.certificates.get(result.response.serial)?.predecessorSerial).toBe(device.serial);
    expect(renewed).toEqual([{ successorSerial: result.response.serial, predecessorSerial: device.serial, deviceId: device.deviceId, issuedAt: expect.any(Date) }]);
    expect(outcomes).toEqual(['issued']);
  });

  it('the same CSR gets the same successor again; another CSR is a conflict naming the successor', async () => {
    const { renewal, device, renewed, outcomes } = await setup();
    const csr = await makeCsr({ cn: device.deviceId });
    const first = await renewal.renew({ credential: device.credential, csr: csr.pem, transport: 'rest' });
    const again = await renewal.renew({ credential: device.credential, csr: csr.pem, transport: 'est' });
    expect(again.replayed).toBe(true);
    expect(again.response).toEqual(first.response);
    const other = await makeCsr({ cn: device.deviceId });
    const conflict = await errorOf(renewal.renew({ credential: device.credential, csr: other.pem, transport: 'rest' }));
    expect(conflict.kind).toBe('conflict');
    expect(conflict.extensions).toMatchObject({ serial: device.serial, successorSerial: first.response.serial });
    expect(renewed).toHaveLength(1);
    expect(outcomes).toEqual(['issued', 'replayed', 'rejected']);
  });

  it('the current certificate must be presented, issued by this CA and on record', async () => {
    const { renewal, device, tables } = await setup();
    const csr = await makeCsr({ cn: device.deviceId });
    expect((await errorOf(renewal.renew({ credential: { kind: 'certificate', der: undefined }, csr: csr.pem, transport: 'rest' }))).kind).toBe('unauthorized');
    const foreign = await enrolled(createMemoryTables(tables.clock), foreignCa);
    expect((await errorOf(renewal.renew({ credential: foreign.credential, csr: csr.pem, transport: 'rest' }))).kind).toBe('unauthorized');
    // Signed by this CA but recorded elsewhere: not on record here.
    const unrecorded = await enrolled(createMemoryTables(tables.clock), ca);
    expect((await errorOf(renewal.renew({ credential: unrecorded.credential, csr: csr.pem, transport: 'rest' }))).kind).toBe('unauthorized');
    // A broker session must name the device the stored certificate belongs to.
    const session: RenewalCredential = { kind: 'session', deviceId: randomDeviceId('other'), serial: device.serial };
    expect((await errorOf(renewal.renew({ credential: session, csr: csr.pem, transport: 'mqtt' }))).kind).toBe('unauthorized');
  });

  it('a revoked current certificate is refused; a superseded one is told to use its successor', async () => {
    const { renewal, device, tables } = await setup();
    const revocation = createMemoryRevocationStore(tables);
    await revocation.revokeCertificate(device.serial, { reasonCode: 4, actor: 'unit' }); // RFC 5280 §5.3.1 superseded
    const error = await errorOf(renewal.renew({ credential: device.credential, csr: (await makeCsr({ cn: device.deviceId })).pem, transport: 'rest' }));
    expect(error.kind).toBe('revoked');
    expect(error.message).toMatch(/superseded/);
    expect(error.extensions).toMatchObject({ serial: device.serial });
  });

  it('a certificate not valid yet is refused', async () => {
    const { renewal, device, clock } = await setup();
    clock.advance(-3600_000);
    expect((await errorOf(renewal.renew({ credential: device.credential, csr: (await makeCsr({ cn: device.deviceId })).pem, transport: 'rest' }))).kind).toBe('forbidden');
  });

  it('the key must be new, and the CSR must name this device', async () => {
    const { renewal, device } = await setup();
    const sameKey = await makeCsr({ cn: device.deviceId, key: device.privateKey });
    expect((await errorOf(renewal.renew({ credential: device.credential, csr: sameKey.pem, transport: 'rest' }))).kind).toBe('bad-key');
    const otherDevice = await makeCsr({ cn: randomDeviceId('someone-else') });
    expect((await errorOf(renewal.renew({ credential: device.credential, csr: otherDevice.pem, transport: 'rest' }))).kind).toBe('identity-mismatch');
    const fresh = await makeCsr({ cn: device.deviceId });
    expect((await renewal.renew({ credential: device.credential, csr: fresh.pem, transport: 'rest' })).replayed).toBe(false);
  });

  describe('an expired current certificate', () => {
    const afterExpiry = (seconds: number) => (LIFETIME_SECONDS + seconds) * 1000;

    it('refuse: is refused, with the operator as the way back', async () => {
      const { renewal, device, clock } = await setup({ mode: 'refuse', graceSeconds: 0 });
      clock.advance(afterExpiry(1));
      const error = await errorOf(renewal.renew({ credential: device.credential, csr: (await makeCsr({ cn: device.deviceId })).pem, transport: 'rest' }));
      expect(error.kind).toBe('expired');
      expect(error.extensions).toMatchObject({ policy: 'refuse', recovery: 'operator' });
    });

    it('grace: renews within the grace period and is refused after it', async () => {
      const { renewal, device, clock } = await setup({ mode: 'grace', graceSeconds: 600 });
      clock.advance(afterExpiry(700));
      const late = await errorOf(renewal.renew({ credential: device.credential, csr: (await makeCsr({ cn: device.deviceId })).pem, transport: 'rest' }));
      expect(late.kind).toBe('expired');
      expect(late.extensions).toMatchObject({ policy: 'grace', recovery: 'operator' });
      clock.advance(-200_000); // 500 s after expiry
      const within = await renewal.renew({ credential: device.credential, csr: (await makeCsr({ cn: device.deviceId })).pem, transport: 'rest' });
      expect(within.replayed).toBe(false);
      expect(new Date(within.response.notAfter).getTime()).toBeGreaterThan(clock.now().getTime());
    });

    it('token: is refused and pointed at enrollment with a bootstrap token', async () => {
      const { renewal, device, clock } = await setup({ mode: 'token', graceSeconds: 0 });
      clock.advance(afterExpiry(1));
      const error = await errorOf(renewal.renew({ credential: device.credential, csr: (await makeCsr({ cn: device.deviceId })).pem, transport: 'rest' }));
      expect(error.kind).toBe('expired');
      expect(error.extensions).toMatchObject({ policy: 'token', recovery: 'bootstrap-token' });
    });
  });
});
