// The revoke use case (core/src/revocation/revocation-service.ts) on the in-memory store, a real issuing CA and a
// manual clock with manual timers: the outcomes, the reasons a revocation may carry (RFC 5280 §5.3.1), the publisher
// told at once after the commit and the CRL after it, coalesced rebuilds (docs/architecture.md §7), a failed rebuild
// that still commits and is repaired by the next one, the batch revoke, and when ensureCrlCurrent rebuilds.
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
import { createManualTimers, settle } from '../support/fakes/timers.js';

let ca: DeviceIssuingCa;
beforeAll(async () => {
  ca = (await createTestIssuingCa()).ca;
});

const CRL_VALIDITY_MS = 3600_000;
const CRL_MIN_INTERVAL_MS = 1000;

function setup(options: { signer?: CrlSigner } = {}) {
  const clock = createManualClock();
  const timers = createManualTimers(clock);
  /** Publications and signatures in the order they happened. */
  const log: string[] = [];
  const tables = createMemoryTables(clock);
  const store = createMemoryRevocationStore(tables);
  const stores = { tokens: createMemoryTokenStore(tables), enrollment: createMemoryEnrollmentStore(tables) };
  const published: Array<{ revoked: RevokedCertificate[]; crl: StoredCrl | undefined; committed: boolean }> = [];
  const crlErrors: unknown[] = [];
  const service = createRevocationService({
    store,
    signer: {
      signCrl: (spec, environment) => {
        log.push(`sign #${spec.crlNumber}`);
        return (options.signer ?? ca).signCrl(spec, environment);
      },
    },
    clock,
    timers,
    crlValidityMs: CRL_VALIDITY_MS,
    crlMinIntervalMs: CRL_MIN_INTERVAL_MS,
    publisher: {
      revoked: (revoked, crl) => {
        log.push(crl ? `crl #${crl.crlNumber}` : `revoked ${revoked.map((r) => r.serial).join(',')}`);
        published.push({ revoked, crl, committed: revoked.every((r) => tables.certificates.get(r.serial)?.revokedAt !== null) });
      },
    },
    onCrlError: (error) => crlErrors.push(error),
  });
  const device = async (count = 1, environment?: string) => {
    const deviceId = randomDeviceId('revoke');
    const serials: string[] = [];
    for (let i = 0; i < count; i++) serials.push((await enrollCertificate(stores, deviceId, { environment })).serial);
    return { deviceId, serials };
  };
  return { clock, timers, tables, store, service, published, crlErrors, device, log };
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
    // No CRL number is promised: the CRL that lists it is built after the answer.
    expect(first).not.toHaveProperty('crlNumber');
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

  it('publishes the revocation at once after the commit, then the rebuilt CRL that lists it', async () => {
    const { service, device, published, store, log } = setup();
    const { deviceId } = await device();
    const result = await service.revokeDevice(deviceId, { reason: 'keyCompromise', actor: 'unit' });
    await settle();
    const crl = await store.latestCrl();
    expect(log).toEqual([`revoked ${result.serials.join(',')}`, `sign #${crl!.crlNumber}`, `crl #${crl!.crlNumber}`]);
    expect(published).toEqual([
      { revoked: result.revoked, crl: undefined, committed: true },
      { revoked: [], crl, committed: true },
    ]);
    expect(crl?.coversSeq).toBe(await store.lastSeq());
  });

  it('a step of the wall clock back holds no CRL back: the spacing is elapsed time', async () => {
    const { service, device, store, timers, clock, log } = setup();
    const [first, second] = [await device(), await device()];
    await service.revokeDevice(first.deviceId, { reason: 'keyCompromise', actor: 'unit' });
    await timers.advance(0);
    expect(log.filter((l) => l.startsWith('sign'))).toHaveLength(1);
    clock.step(-3600_000); // NTP, or a VM restored from a snapshot, sets the wall clock an hour back
    await service.revokeDevice(second.deviceId, { reason: 'keyCompromise', actor: 'unit' });
    await timers.advance(CRL_MIN_INTERVAL_MS);
    expect(log.filter((l) => l.startsWith('sign'))).toHaveLength(2);
    expect((await store.latestCrl())?.coversSeq).toBe(await store.lastSeq());
    expect(timers.pending).toBe(0);
  });

  it('coalesces: N revocations over T seconds cause at most ceil(T / interval) + 1 rebuilds, the last covering all', async () => {
    const { service, device, store, timers, log } = setup();
    const devices = [];
    for (let i = 0; i < 50; i++) devices.push(await device());
    const spacingMs = 100;
    for (const d of devices) {
      await service.revokeDevice(d.deviceId, { reason: 'keyCompromise', actor: 'unit' });
      await timers.advance(spacingMs);
    }
    await timers.advance(CRL_MIN_INTERVAL_MS);
    const spanMs = (devices.length - 1) * spacingMs;
    const rebuilds = log.filter((l) => l.startsWith('sign')).length;
    expect(rebuilds).toBeLessThanOrEqual(Math.ceil(spanMs / CRL_MIN_INTERVAL_MS) + 1);
    expect((await store.latestCrl())?.coversSeq).toBe(await store.lastSeq());
    expect(timers.pending).toBe(0);
    // Each revocation was published when it committed, not held back for a rebuild.
    expect(log.filter((l) => l.startsWith('revoked'))).toHaveLength(devices.length);
  });

  it('two replicas over one store share the schedule: rebuilds CRL_MIN_INTERVAL apart in all, and a CRL the other built serves', async () => {
    const { service, device, store, timers, clock, log } = setup();
    const signedAt: number[] = [];
    const replica = createRevocationService({
      store,
      signer: { signCrl: (spec) => (signedAt.push(clock.now().getTime()), ca.signCrl(spec)) },
      clock,
      timers,
      crlValidityMs: CRL_VALIDITY_MS,
      crlMinIntervalMs: CRL_MIN_INTERVAL_MS,
    });
    const start = clock.now().getTime();
    for (let i = 0; i < 40; i++) {
      const d = await device();
      await (i % 2 === 0 ? service : replica).revokeDevice(d.deviceId, { reason: 'keyCompromise', actor: 'unit' });
      await timers.advance(100);
    }
    await timers.advance(CRL_MIN_INTERVAL_MS);
    const ownSigned = log.filter((l) => l.startsWith('sign')).length;
    // Both replicas rebuilt; together no more than one replica alone may.
    expect(ownSigned).toBeGreaterThan(0);
    expect(signedAt.length).toBeGreaterThan(0);
    const spanMs = clock.now().getTime() - start;
    expect(ownSigned + signedAt.length).toBeLessThanOrEqual(Math.ceil(spanMs / CRL_MIN_INTERVAL_MS) + 1);
    const latest = await store.latestCrl();
    expect(latest?.coversSeq).toBe(await store.lastSeq());
    // The newest CRL covers everything: neither replica builds another to answer a fetch.
    const before = ownSigned + signedAt.length;
    expect(await replica.currentCrl()).toEqual(latest);
    expect(await service.currentCrl()).toEqual(latest);
    expect(log.filter((l) => l.startsWith('sign')).length + signedAt.length).toBe(before);
    expect(timers.pending).toBe(0);
  });

  it('one rebuild at a time: revocations during a rebuild cause exactly one more after it', async () => {
    let release: () => void = () => undefined;
    let inFlight = 0;
    let maxInFlight = 0;
    const signer: CrlSigner = {
      signCrl: async (spec) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise<void>((resolve) => (release = resolve));
        inFlight--;
        return ca.signCrl(spec);
      },
    };
    const { service, device, timers, log, store } = setup({ signer });
    const devices = [await device(), await device(), await device(), await device()];
    await service.revokeDevice(devices[0]!.deviceId, { reason: 'keyCompromise', actor: 'unit' });
    // The first rebuild is signing; three more revocations arrive, well past the interval.
    await timers.advance(5 * CRL_MIN_INTERVAL_MS);
    for (const d of devices.slice(1)) await service.revokeDevice(d.deviceId, { reason: 'keyCompromise', actor: 'unit' });
    await timers.advance(5 * CRL_MIN_INTERVAL_MS);
    expect(log.filter((l) => l.startsWith('sign'))).toHaveLength(1);
    release();
    await timers.advance(0);
    expect(log.filter((l) => l.startsWith('sign'))).toHaveLength(2);
    release();
    await timers.advance(5 * CRL_MIN_INTERVAL_MS);
    expect(log.filter((l) => l.startsWith('sign'))).toHaveLength(2);
    expect(maxInFlight).toBe(1);
    expect((await store.latestCrl())?.coversSeq).toBe(await store.lastSeq());
  });

  it('a failed CRL rebuild still commits and publishes the revocation, is reported, and the next rebuild lists it', async () => {
    const failure = new Error('HSM unavailable');
    let failing = true;
    const listed: string[][] = [];
    const signer: CrlSigner = {
      signCrl: (spec) => {
        if (failing) return Promise.reject(failure);
        listed.push(spec.entries.map((e) => e.serial));
        return ca.signCrl(spec);
      },
    };
    const { service, device, published, crlErrors, tables, timers, store } = setup({ signer });
    const first = await device();
    const result = await service.revokeDevice(first.deviceId, { reason: 'keyCompromise', actor: 'unit' });
    await settle();
    expect(result).toMatchObject({ outcome: 'revoked', serials: first.serials });
    expect(tables.certificates.get(first.serials[0]!)?.revokedAt).not.toBeNull();
    expect(crlErrors).toEqual([failure]);
    expect(published).toEqual([{ revoked: result.revoked, crl: undefined, committed: true }]);
    expect(await store.latestCrl()).toBeUndefined();

    failing = false;
    const second = await device();
    await service.revokeDevice(second.deviceId, { reason: 'keyCompromise', actor: 'unit' });
    await timers.advance(CRL_MIN_INTERVAL_MS);
    expect(listed).toEqual([[...first.serials, ...second.serials]]);
    expect(crlErrors).toHaveLength(1);
    expect(published.at(-1)?.crl).toEqual(await store.latestCrl());
  });

  it('revokeCertificates: one store call for the batch, skips unknown and already revoked serials, publishes at once, one rebuild', async () => {
    const { service, device, store, published, log, timers } = setup();
    const a = await device(2);
    const b = await device();
    await service.revokeCertificate(a.serials[0]!, { reason: 'superseded', actor: 'unit' });
    await timers.advance(CRL_MIN_INTERVAL_MS);
    const signsBefore = log.filter((l) => l.startsWith('sign')).length;
    let storeCalls = 0;
    const revokeCertificates = store.revokeCertificates.bind(store);
    store.revokeCertificates = (serials, command) => {
      storeCalls++;
      return revokeCertificates(serials, command);
    };
    const { revoked } = await service.revokeCertificates([...a.serials, b.serials[0]!, newSerial()], { reason: 'superseded', actor: 'rotation', requestId: 'r-1' });
    expect(storeCalls).toBe(1);
    expect(revoked.map((r) => r.serial)).toEqual([a.serials[1], b.serials[0]]);
    expect(revoked.every((r) => r.reasonCode === 4)).toBe(true); // RFC 5280 §5.3.1 superseded
    await timers.advance(CRL_MIN_INTERVAL_MS);
    expect(published).toContainEqual({ revoked, crl: undefined, committed: true });
    expect(log.slice(log.indexOf(`revoked ${a.serials[1]},${b.serials[0]}`) + 1).filter((l) => l.startsWith('sign'))).toHaveLength(1);
    expect(log.filter((l) => l.startsWith('sign')).length).toBe(signsBefore + 1);
    expect((await store.latestCrl())?.coversSeq).toBe(await store.lastSeq());

    expect(await service.revokeCertificates([], { reason: 'superseded', actor: 'rotation' })).toEqual({ revoked: [] });
    expect(await service.revokeCertificates([a.serials[0]!], { reason: 'superseded', actor: 'rotation' })).toEqual({ revoked: [] });
    expect(storeCalls).toBe(2);
    expect(await kindOf(service.revokeCertificates(['xyz'], { reason: 'superseded', actor: 'rotation' }))).toBe('bad-request');
    expect(await kindOf(service.revokeCertificates([b.serials[0]!], { reason: 'certificateHold', actor: 'rotation' }))).toBe('bad-request');
  });

  it('currentCrl waits for the rebuild that covers a revocation committed before the call', async () => {
    const { service, device, store, timers } = setup();
    await service.ensureCrlCurrent();
    const { deviceId, serials } = await device();
    await service.revokeDevice(deviceId, { reason: 'keyCompromise', actor: 'unit' });
    const served = service.currentCrl();
    await timers.advance(CRL_MIN_INTERVAL_MS);
    const crl = await served;
    expect(crl.coversSeq).toBe(await store.lastSeq());
    expect(crl).toEqual(await store.latestCrl());
    expect((await store.revokedSince(crl.coversSeq - 1)).map((r) => r.serial)).toEqual(serials);
  });

  it('ensureCrlCurrent rebuilds when there is none, at half its validity, and when a revocation is missing from it', async () => {
    const { service, device, store, clock, timers } = setup();
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
    const pending = service.ensureCrlCurrent();
    await timers.advance(CRL_MIN_INTERVAL_MS);
    const caughtUp = await pending;
    expect(caughtUp.crlNumber).toBeGreaterThan(halfLife.crlNumber);
    expect(caughtUp.coversSeq).toBe(await store.lastSeq());
    expect(await service.currentCrl()).toEqual(caughtUp);
  });

  it('a CRL per environment: a revocation rebuilds its own environment\'s CRL, signed for it, coalesced apart from the others', async () => {
    const signedFor: string[] = [];
    const { service, device, store, timers, tables } = setup({ signer: { signCrl: (spec, environment) => (signedFor.push(environment), ca.signCrl(spec)) } });
    tables.environments.set('dev', { name: 'dev', ownRoot: false, issuingCertificatePem: 'issuing', rootCertificatePem: 'root', createdAt: new Date(), createdBy: 'unit', deletedAt: null });
    const defaultCrl = await service.ensureCrlCurrent('default');
    const devCrl = await service.ensureCrlCurrent('dev');
    expect(signedFor).toEqual(['default', 'dev']);

    const inDev = [await device(1, 'dev'), await device(1, 'dev'), await device(1, 'dev')];
    for (const d of inDev) await service.revokeDevice(d.deviceId, { reason: 'keyCompromise', actor: 'unit' });
    await timers.advance(CRL_MIN_INTERVAL_MS);
    // Three revocations inside one interval: one rebuild, of the dev CRL only.
    expect(signedFor).toEqual(['default', 'dev', 'dev']);
    const rebuilt = await store.latestCrl('dev');
    expect(rebuilt!.crlNumber).toBeGreaterThan(devCrl.crlNumber);
    expect(rebuilt!.coversSeq).toBe(await store.lastSeq('dev'));
    // `default` had no revocation: its CRL is still current and is not signed again.
    expect(await service.ensureCrlCurrent('default')).toEqual(defaultCrl);
    expect(await service.currentCrl('dev')).toEqual(rebuilt);
    expect(signedFor).toHaveLength(3);

    const inDefault = await device();
    await service.revokeDevice(inDefault.deviceId, { reason: 'keyCompromise', actor: 'unit' });
    await timers.advance(CRL_MIN_INTERVAL_MS);
    expect(signedFor).toEqual(['default', 'dev', 'dev', 'default']);
    expect((await store.latestCrl('default'))!.coversSeq).toBe(await store.lastSeq('default'));
    expect(await store.latestCrl('dev')).toEqual(rebuilt);
  });
});
