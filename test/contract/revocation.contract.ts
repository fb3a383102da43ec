// The RevocationStore contract (core/src/revocation/ports.ts), run against every implementation. Certificates are
// made through the enrollment ports, as in production.
import { describe, expect, it } from '@jest/globals';
import type { RevocationStore } from '@enrolld/core/revocation/ports.js';
import type { EnrollmentPorts } from './enrollment.contract.js';
import { enrollCertificate, newDeviceId, newSerial } from './store-fixtures.js';

const KEY_COMPROMISE = 1; // RFC 5280 §5.3.1
const SUPERSEDED = 4;

export function describeRevocationStoreContract(name: string, makeStores: () => EnrollmentPorts & { revocation: RevocationStore }): void {
  describe(`${name}: revocation store contract`, () => {
    /** A device with `count` issued certificates (one token each). */
    async function device(count: number, options: { lifetimeMs?: number } = {}, stores = makeStores()) {
      const deviceId = newDeviceId('contract-rev');
      const serials: string[] = [];
      for (let i = 0; i < count; i++) serials.push((await enrollCertificate(stores, deviceId, options)).serial);
      return { ...stores, deviceId, serials };
    }
    const command = (reasonCode = KEY_COMPROMISE) => ({ reasonCode, actor: 'contract' });

    it('revokes every live certificate of a device once, with rising seqs; a second call is already-revoked', async () => {
      const { revocation, deviceId, serials } = await device(2);
      const before = await revocation.lastSeq();
      const first = await revocation.revokeDevice(deviceId, command());
      if (first.outcome !== 'revoked') throw new Error(`expected revoked, got ${first.outcome}`);
      expect(first.revoked.map((r) => r.serial).sort()).toEqual([...serials].sort());
      expect(first.revoked.every((r) => r.deviceId === deviceId && r.reasonCode === KEY_COMPROMISE)).toBe(true);
      const seqs = first.revoked.map((r) => r.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(seqs[0]).toBeGreaterThan(before);
      expect(await revocation.lastSeq()).toBe(seqs.at(-1));
      expect(await revocation.revokeDevice(deviceId, command())).toEqual({ outcome: 'already-revoked', deviceId, revoked: [] });
    });

    it('an unknown device or serial is not-found', async () => {
      const { revocation } = makeStores();
      expect(await revocation.revokeDevice(newDeviceId('nobody'), command())).toEqual({ outcome: 'not-found' });
      expect(await revocation.revokeCertificate(newSerial(), command())).toEqual({ outcome: 'not-found' });
    });

    it('a revoke reaches only its identities: the fleet never an admin, the admin scope never a device', async () => {
      const stores = makeStores();
      const admin = newDeviceId('contract-admin');
      const adminCert = await enrollCertificate(stores, admin, { kind: 'admin' });
      const fleet = await device(1, {}, stores);
      expect(await stores.revocation.revokeDevice(admin, command())).toEqual({ outcome: 'not-found' });
      expect(await stores.revocation.revokeCertificate(adminCert.serial, command())).toEqual({ outcome: 'not-found' });
      expect(await stores.revocation.revokeDevice(fleet.deviceId, { ...command(), identities: 'admins' })).toEqual({ outcome: 'not-found' });
      expect(await stores.revocation.revokeCertificate(fleet.serials[0]!, { ...command(), identities: 'admins' })).toEqual({ outcome: 'not-found' });
      expect(await stores.revocation.revokeDevice(admin, { ...command(), identities: 'admins' })).toMatchObject({ outcome: 'revoked', revoked: [{ serial: adminCert.serial }] });
      expect(await stores.revocation.revokeDevice(fleet.deviceId, command())).toMatchObject({ outcome: 'revoked', revoked: [{ serial: fleet.serials[0] }] });
    });

    it('revokes one certificate by serial and leaves the others of the device alone', async () => {
      const { revocation, deviceId, serials } = await device(2);
      const one = await revocation.revokeCertificate(serials[0]!, command(SUPERSEDED));
      expect(one).toMatchObject({ outcome: 'revoked', deviceId, revoked: [{ serial: serials[0], reasonCode: SUPERSEDED }] });
      expect(await revocation.revokeCertificate(serials[0]!, command())).toEqual({ outcome: 'already-revoked', deviceId, revoked: [] });
      const rest = await revocation.revokeDevice(deviceId, command());
      expect(rest).toMatchObject({ outcome: 'revoked', revoked: [{ serial: serials[1] }] });
    });

    it('revokedSince pages in seq order; the snapshot agrees with lastSeq', async () => {
      const a = await device(1);
      const b = await device(1, {}, a); // the same store: one seq space
      const start = await a.revocation.lastSeq();
      await a.revocation.revokeDevice(a.deviceId, command());
      await b.revocation.revokeDevice(b.deviceId, command());
      const since = await a.revocation.revokedSince(start);
      expect(since.map((r) => r.serial)).toEqual([a.serials[0], b.serials[0]]);
      expect(since[1]!.seq).toBeGreaterThan(since[0]!.seq);
      expect(await a.revocation.revokedSince(start, 1)).toEqual(since.slice(0, 1));
      expect(await a.revocation.revokedSince(since[1]!.seq)).toEqual([]);
      const snapshot = await a.revocation.snapshot();
      expect(snapshot.lastSeq).toBe(await a.revocation.lastSeq());
      expect(snapshot.revoked.map((r) => r.serial)).toEqual(expect.arrayContaining([a.serials[0], b.serials[0]]));
    });

    it('an expired certificate is not revoked with its device, but is when named by serial', async () => {
      const { revocation, deviceId, serials } = await device(1, { lifetimeMs: 30_000 }); // notBefore is 60 s back
      expect(await revocation.revokeDevice(deviceId, command())).toEqual({ outcome: 'already-revoked', deviceId, revoked: [] });
      expect(await revocation.revokeCertificate(serials[0]!, command())).toMatchObject({ outcome: 'revoked', revoked: [{ serial: serials[0] }] });
    });

    it('CRLs get rising numbers and cover the seq they were built at', async () => {
      const { revocation, deviceId, serials } = await device(1);
      await revocation.revokeDevice(deviceId, command());
      const validity = { thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 3600_000) };
      let seen: { serials: string[]; coversSeq: number } | undefined;
      const first = await revocation.regenerateCrl((input) => {
        seen = { serials: input.entries.map((e) => e.serial), coversSeq: input.coversSeq };
        return Buffer.from(`crl-${input.crlNumber}`);
      }, validity);
      expect(seen?.serials).toContain(serials[0]);
      expect(first.coversSeq).toBe(await revocation.lastSeq());
      const second = await revocation.regenerateCrl((input) => Buffer.from(`crl-${input.crlNumber}`), validity);
      expect(second.crlNumber).toBeGreaterThan(first.crlNumber);
      expect(await revocation.latestCrl()).toEqual(second);
    });

    it('rebuildCrlWhenDue: current while the newest CRL covers everything, not-due within the interval, built when due', async () => {
      const { revocation, deviceId, serials } = await device(2);
      await revocation.revokeCertificate(serials[0]!, command());
      const validity = { thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 3600_000) };
      const build = (input: { crlNumber: bigint }) => Buffer.from(`crl-${input.crlNumber}`);
      const hour = { minIntervalMs: 3600_000, currentForMs: 3600_000 };
      const first = await revocation.regenerateCrl(build, validity, 'default');
      expect(await revocation.rebuildCrlWhenDue(build, validity, 'default', hour)).toEqual({ outcome: 'current', crl: first });
      // A revocation the newest CRL does not cover: due only an interval after that CRL was built.
      await revocation.revokeDevice(deviceId, command());
      const early = await revocation.rebuildCrlWhenDue(build, validity, 'default', hour);
      if (early.outcome !== 'not-due') throw new Error(`expected not-due, got ${early.outcome}`);
      expect(early.retryInMs).toBeGreaterThan(0);
      expect(early.retryInMs).toBeLessThanOrEqual(hour.minIntervalMs);
      expect(await revocation.latestCrl()).toEqual(first);
      const due = await revocation.rebuildCrlWhenDue(build, validity, 'default', { minIntervalMs: 0, currentForMs: 3600_000 });
      if (due.outcome !== 'built') throw new Error(`expected built, got ${due.outcome}`);
      expect(due.crl.crlNumber).toBeGreaterThan(first.crlNumber);
      expect(due.crl.coversSeq).toBe(await revocation.lastSeq());
      expect(await revocation.rebuildCrlWhenDue(build, validity, 'default', { minIntervalMs: 0, currentForMs: 3600_000 })).toEqual({ outcome: 'current', crl: due.crl });
      // Too old to stay current (currentForMs 0) and due: built again.
      expect((await revocation.rebuildCrlWhenDue(build, validity, 'default', { minIntervalMs: 0, currentForMs: 0 })).outcome).toBe('built');
    });

    it('revokeCertificates: the unrevoked ones among the serials in one call, in seq order; unknown and revoked ones skipped', async () => {
      const { revocation, deviceId, serials } = await device(3);
      await revocation.revokeCertificate(serials[0]!, command());
      const before = await revocation.lastSeq();
      const revoked = await revocation.revokeCertificates([serials[2]!, serials[0]!, newSerial(), serials[1]!], command(SUPERSEDED));
      expect(revoked.map((r) => r.serial).sort()).toEqual([serials[1], serials[2]].sort());
      expect(revoked.every((r) => r.deviceId === deviceId && r.reasonCode === SUPERSEDED)).toBe(true);
      const seqs = revoked.map((r) => r.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(seqs[0]).toBeGreaterThan(before);
      expect(await revocation.lastSeq()).toBe(seqs.at(-1));
      expect(await revocation.revokedSince(before)).toEqual(revoked);
      expect(await revocation.revokeCertificates(serials, command())).toEqual([]);
      expect(await revocation.revokeCertificates([], command())).toEqual([]);
    });

    it('a CRL entry stays until one CRL issued at or past its notAfter listed it, then drops off (RFC 5280 §3.3)', async () => {
      const stores = makeStores();
      // notBefore is 60 s back: 90 s of life leaves 30 s; 30 s of life is already over.
      const live = await device(1, { lifetimeMs: 90_000 }, stores);
      const expired = await device(1, { lifetimeMs: 30_000 }, stores);
      const { revocation } = stores;
      await revocation.revokeCertificate(live.serials[0]!, command());
      await revocation.revokeCertificate(expired.serials[0]!, command());
      const t0 = Date.now();
      const listed: string[][] = [];
      const crlAt = (offsetMs: number) =>
        revocation.regenerateCrl(
          (input) => {
            listed.push(input.entries.map((e) => e.serial));
            return Buffer.from(`crl-${input.crlNumber}`);
          },
          { thisUpdate: new Date(t0 + offsetMs), nextUpdate: new Date(t0 + offsetMs + 3600_000) },
        );
      const first = await crlAt(0); // before the live one's notAfter; the expired one is listed once, being new
      await crlAt(60_000); // the first CRL past the live one's notAfter
      const third = await crlAt(120_000);
      expect(listed.map((serials) => [live.serials[0], expired.serials[0]].map((s) => serials.includes(s!)))).toEqual([
        [true, true],
        [true, false],
        [false, false],
      ]);
      // Dropped entries are still covered: the CRL is not stale for them.
      expect(third.coversSeq).toBe(first.coversSeq);
      expect(third.coversSeq).toBe(await revocation.lastSeq());
    });
  });
}
