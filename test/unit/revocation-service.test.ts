// The revoke use case (core/src/revocation/revocation-service.ts) on the in-memory store, a real issuing CA and a
// manual clock: the outcomes, the reasons a revocation may carry (RFC 5280 §5.3.1), the publisher told after the
// commit with the CRL, a failed CRL rebuild that still commits, and when ensureCrlCurrent rebuilds.
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { DeviceIssuingCa } from '@enrolld/core/ca/index.js';
import { EnrollError } from '@enrolld/core/errors.js';
import type { CrlSigner, RevokedCertificate, StoredCrl } from '@enrolld/core/revocation/ports.js';
import { createRevocationService } from '@enrolld/core/revocation/revocation-service.js';
import { enrollCertificate, newSerial } from '../contract/store-fixtures.js';
import { createTestIssuingCa, randomDeviceId } from '../support/csr-factory.js';
import { createManualClock } from '../support/fakes/clock.js';
import { createMemoryEnrollmentStore, createMemoryTokenStore } from '../support/fakes/enrollment.js';
import { createMemoryTables } from '../support/fakes/memory-tables.js';
import { createMemoryRevocationStore } from '../support/fakes/revocation.js';

let ca: DeviceIssuingCa;
beforeAll(async () => {
  ca = (await createTestIssuingCa()).ca;
});

const CRL_VALIDITY_MS = 3600_000;

function setup(options: { signer?: CrlSigner } = {}) {
  const clock = createManualClock();
  const tables = createMemoryTables(clock);
  const store = createMemoryRevocationStore(tables);
  const stores = { tokens: createMemoryTokenStore(tables), enrollment: createMemoryEnrollmentStore(tables) };
  const published: Array<{ revoked: RevokedCertificate[]; crl: StoredCrl | undefined; committed: boolean }> = [];
  const crlErrors: unknown[] = [];
  const service = createRevocationService({
    store,
    signer: options.signer ?? ca,
    clock,
    crlValidityMs: CRL_VALIDITY_MS,
    publisher: {
      revoked: (revoked, crl) => published.push({ revoked, crl, committed: revoked.every((r) => tables.certificates.get(r.serial)?.revokedAt !== null) }),
    },
    onCrlError: (error) => crlErrors.push(error),
  });
  const device = async (count = 1) => {
    const deviceId = randomDeviceId('revoke');
    const serials: string[] = [];
    for (let i = 0; i < count; i++) serials.push((await enrollCertificate(stores, deviceId)).serial);
    return { deviceId, serials };
  };
  return { clock, tables, store, service, published, crlErrors, device };
}

const kindOf = async (promise: Promise<unknown>) => {
  const error = await promise.then(() => undefined, (e: unknown) => e);
  return error instanceof EnrollError ? error.kind : String(error);
};

describe('revocation service', () => {
  it('revokeDevice: revoked, then already-revoked; an unknown device is not-found', async () => {
    const { service, device } = setup();
    const { deviceId, serials } = await device(2);
    const first = await service.revokeDevice(deviceId, { reason: 'keyCompromise', actor: 'unit' });
    expect(first).toMatchObject({ outcome: 'revoked', deviceId, reason: 'keyCompromise' });
    expect([...first.serials].sort()).toEqual([...serials].sort());
    expect(first.crlNumber).toBeDefined();
    expect(await service.revokeDevice(deviceId, { reason: 'keyCompromise', actor: 'unit' })).toMatchObject({ outcome: 'already-revoked', serials: [], revoked: [] });
    expect(await kindOf(service.revokeDevice(randomDeviceId('nobody'), { reason: 'keyCompromise', actor: 'unit' }))).toBe('not-found');
  });

  it('revokeCertificate: revoked, then already-revoked; an unknown serial is not-found', async () => {
    const { service, device } = setup();
    const { deviceId, serials } = await device(2);
    expect(await service.revokeCertificate(serials[0]!, { reason: 'superseded', actor: 'unit' })).toMatchObject({ outcome: 'revoked', deviceId, serials: [serials[0]] });
    expect(await service.revokeCertificate(serials[0]!, { reason: 'superseded', actor: 'unit' })).toMatchObject({ outcome: 'already-revoked', deviceId, serials: [] });
    expect(await kindOf(service.revokeCertificate(newSerial(), { reason: 'superseded', actor: 'unit' }))).toBe('not-found');
  });

  it('a reason that is not a revocation reason, a bad device id or a bad serial is a bad request', async () => {
    const { service, device, tables } = setup();
    const { deviceId, serials } = await device();
    for (const reason of ['nonsense', 'certificateHold', 'removeFromCRL']) {
      expect(await kindOf(service.revokeDevice(deviceId, { reason, actor: 'unit' }))).toBe('bad-request');
      expect(await kindOf(service.revokeCertificate(serials[0]!, { reason, actor: 'unit' }))).toBe('bad-request');
    }
    expect(await kindOf(service.revokeDevice('Not A Device', { reason: 'keyCompromise', actor: 'unit' }))).toBe('bad-request');
    expect(await kindOf(service.revokeCertificate('xyz', { reason: 'keyCompromise', actor: 'unit' }))).toBe('bad-request');
    expect(tables.certificates.get(serials[0]!)?.revokedAt).toBeNull();
  });

  it('tells the publisher after the commit, with the CRL that lists the revocation', async () => {
    const listed: string[] = [];
    const { service, device, published, store } = setup({
      signer: {
        signCrl: (spec) => {
          listed.push(...spec.entries.map((e) => e.serial));
          return ca.signCrl(spec);
        },
      },
    });
    const { deviceId } = await device();
    const result = await service.revokeDevice(deviceId, { reason: 'keyCompromise', actor: 'unit' });
    expect(listed).toEqual(result.serials);
    expect(published).toHaveLength(1);
    expect(published[0]!.committed).toBe(true);
    expect(published[0]!.revoked).toEqual(result.revoked);
    expect(published[0]!.crl?.crlNumber).toBe(result.crlNumber);
    expect(published[0]!.crl?.coversSeq).toBe(await store.lastSeq());
    expect(published[0]!.crl).toEqual(await store.latestCrl());
  });

  it('a failed CRL rebuild still commits the revocation, reports the failure and publishes without a CRL', async () => {
    const failure = new Error('HSM unavailable');
    const { service, device, published, crlErrors, tables } = setup({ signer: { signCrl: () => Promise.reject(failure) } });
    const { deviceId, serials } = await device();
    const result = await service.revokeDevice(deviceId, { reason: 'keyCompromise', actor: 'unit' });
    expect(result).toMatchObject({ outcome: 'revoked', serials, crlNumber: undefined });
    expect(tables.certificates.get(serials[0]!)?.revokedAt).not.toBeNull();
    expect(crlErrors).toEqual([failure]);
    expect(published).toEqual([{ revoked: result.revoked, crl: undefined, committed: true }]);
  });

  it('ensureCrlCurrent rebuilds when there is none, at half its validity, and when a revocation is missing from it', async () => {
    const { service, device, store, clock } = setup();
    const first = await service.ensureCrlCurrent();
    expect(await service.ensureCrlCurrent()).toEqual(first);
    clock.advance(CRL_VALIDITY_MS / 2 - 1000);
    expect((await service.ensureCrlCurrent()).crlNumber).toBe(first.crlNumber);
    clock.advance(1000);
    const halfLife = await service.ensureCrlCurrent();
    expect(halfLife.crlNumber).toBeGreaterThan(first.crlNumber);
    // Committed in the store without the use case (as if its rebuild had been lost): the CRL does not cover it.
    const { deviceId } = await device();
    await store.revokeDevice(deviceId, { reasonCode: 1, actor: 'unit' });
    const caughtUp = await service.ensureCrlCurrent();
    expect(caughtUp.crlNumber).toBeGreaterThan(halfLife.crlNumber);
    expect(caughtUp.coversSeq).toBe(await store.lastSeq());
    expect(await service.currentCrl()).toEqual(caughtUp);
  });
});
