// The RenewalStore and RotationStore contract (core/src/renewal/ports.ts), run against every implementation: the
// renewal authorizes against the row as stored and records one successor per certificate (the same CSR replays or
// resumes it, another CSR is told which successor exists); supersession and lineage queries; the sweep's renewal
// window and once-only hints.
import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import type { BeginRenewal, RenewalCertificate, RenewalStore, RotationStore } from '@enrolld/core/renewal/ports.js';
import type { ProfileStore } from '@enrolld/core/profiles/ports.js';
import type { RevocationStore } from '@enrolld/core/revocation/ports.js';
import type { EnrollmentPorts } from './enrollment.contract.js';
import { enrollCertificate, intentFor, newDeviceId, newSerial } from './store-fixtures.js';

export type RenewalPorts = EnrollmentPorts & {
  revocation: RevocationStore;
  renewal: RenewalStore & RotationStore;
  profiles: Pick<ProfileStore, 'create' | 'update'>;
};

const KEY_COMPROMISE = 1; // RFC 5280 §5.3.1
const LARGE = 100_000; // the Postgres suites share one database: read everything, then look at this test's rows

/** A renewal request for `predecessorSerial` with a fresh key, unless the overrides say otherwise. */
function request(predecessorSerial: string, overrides: Partial<BeginRenewal> = {}): BeginRenewal {
  const csrSha256 = overrides.csrSha256 ?? randomBytes(32);
  const publicKeySha256 = overrides.publicKeySha256 ?? randomBytes(32);
  return {
    predecessorSerial,
    csrSha256,
    publicKeySha256,
    inFlightSeconds: 0,
    authorize: () => undefined,
    buildIntent: (p) => intentFor(p, csrSha256, { publicKeySha256 }),
    ...overrides,
  };
}
async function renewed(renewal: RenewalStore, predecessorSerial: string, overrides: Partial<BeginRenewal> = {}) {
  const begun = await renewal.beginRenewal(request(predecessorSerial, overrides));
  if (begun.outcome !== 'begun') throw new Error(`expected begun, got ${begun.outcome}`);
  return renewal.complete(begun.intent.serial, Buffer.from(`signed-${begun.intent.serial}`));
}

export function describeRenewalStoreContract(name: string, makeStores: () => RenewalPorts): void {
  describe(`${name}: renewal store contract`, () => {
    async function issued(options: { lifetimeMs?: number; group?: string } = {}, stores = makeStores()) {
      const deviceId = newDeviceId('contract-renew');
      const current = await enrollCertificate(stores, deviceId, options);
      return { ...stores, deviceId, current };
    }
    const ownRows = <T extends { deviceId: string }>(rows: T[], deviceId: string) => rows.filter((r) => r.deviceId === deviceId);

    it('authorizes against the stored row; a throw reaches the caller unchanged and records nothing', async () => {
      const { renewal, current, deviceId } = await issued();
      let seen: RenewalCertificate | undefined;
      let built = 0;
      const refusal = new Error('not this certificate');
      await expect(
        renewal.beginRenewal(
          request(current.serial, {
            authorize: (p) => {
              seen = p;
              throw refusal;
            },
            buildIntent: () => {
              built++;
              throw new Error('never');
            },
          }),
        ),
      ).rejects.toBe(refusal);
      expect(built).toBe(0);
      expect(seen).toMatchObject({
        serial: current.serial,
        deviceId,
        profile: 'device',
        der: Buffer.from(`signed-${current.serial}`),
        notBefore: current.notBefore,
        notAfter: current.notAfter,
        publicKeySha256: current.publicKeySha256,
        revokedAt: null,
        revocationReason: null,
        predecessorSerial: null,
      });
      expect(await renewal.descendants(current.serial)).toEqual([]);
    });

    it('the predecessor brings the group recorded at enrollment; the successor\'s intent records the one it is built with', async () => {
      const { renewal, current } = await issued({ group: 'line-7' });
      let seen: RenewalCertificate | undefined;
      const begun = await renewal.beginRenewal(request(current.serial, { authorize: (p) => void (seen = p), buildIntent: (p) => ({ ...intentFor(p, randomBytes(32)), group: p.group }) }));
      if (begun.outcome !== 'begun') throw new Error(`expected begun, got ${begun.outcome}`);
      expect(seen?.group).toBe('line-7');
      expect(begun.intent.group).toBe('line-7');
      // Recorded: a request with the same CSR that finds the intent unsigned resumes it with the group.
      const resumed = await renewal.beginRenewal(request(current.serial, { csrSha256: begun.intent.csrSha256, publicKeySha256: begun.intent.publicKeySha256 }));
      expect(resumed).toMatchObject({ outcome: 'resume', intent: { serial: begun.intent.serial, group: 'line-7' } });
    });

    it('records the successor naming its predecessor; the same CSR replays it, another CSR names it', async () => {
      const { renewal, current, deviceId } = await issued();
      const csrSha256 = randomBytes(32);
      const begun = await renewal.beginRenewal(request(current.serial, { csrSha256 }));
      if (begun.outcome !== 'begun') throw new Error(`expected begun, got ${begun.outcome}`);
      expect(begun.intent).toMatchObject({ deviceId, profile: 'device', predecessorSerial: current.serial });
      const stored = await renewal.complete(begun.intent.serial, Buffer.from('signed-successor'));
      expect(stored).toMatchObject({ serial: begun.intent.serial, deviceId, der: Buffer.from('signed-successor') });
      expect(await renewal.complete(begun.intent.serial, Buffer.from('second'))).toEqual(stored);

      let built = 0;
      const replay = await renewal.beginRenewal(request(current.serial, { csrSha256, buildIntent: () => { built++; throw new Error('never'); } }));
      expect(replay).toEqual({ outcome: 'replay', certificate: stored });
      expect(await renewal.beginRenewal(request(current.serial))).toEqual({ outcome: 'successor-exists', successorSerial: stored.serial });
      expect(built).toBe(0);
    });

    it('an unsigned successor is in progress while young, then resumed with the recorded intent', async () => {
      const { renewal, current } = await issued();
      const csrSha256 = randomBytes(32);
      const begun = await renewal.beginRenewal(request(current.serial, { csrSha256 }));
      if (begun.outcome !== 'begun') throw new Error(`expected begun, got ${begun.outcome}`);
      expect(await renewal.beginRenewal(request(current.serial, { csrSha256, inFlightSeconds: 3600 }))).toEqual({ outcome: 'in-progress' });
      expect(await renewal.beginRenewal(request(current.serial, { csrSha256, inFlightSeconds: 0 }))).toEqual({ outcome: 'resume', intent: begun.intent });
    });

    it('concurrent renewals with different CSRs record one successor; the others are told which', async () => {
      const { renewal, current } = await issued();
      const results = await Promise.all([0, 1, 2, 3].map(() => renewal.beginRenewal(request(current.serial))));
      const begun = results.filter((r) => r.outcome === 'begun');
      expect(begun).toHaveLength(1);
      const successorSerial = begun[0]!.outcome === 'begun' ? begun[0]!.intent.serial : '';
      expect(results.filter((r) => r.outcome !== 'begun')).toEqual(Array(3).fill({ outcome: 'successor-exists', successorSerial }));
      expect(await renewal.descendants(current.serial)).toEqual([successorSerial]);
    });

    it('a key already certified is refused; a revoked predecessor is refused after authorize saw it; an unknown one is not-found', async () => {
      const stores = makeStores();
      const { renewal, revocation, current } = await issued({}, stores);
      const other = await issued({}, stores);
      expect(await renewal.beginRenewal(request(current.serial, { publicKeySha256: current.publicKeySha256 }))).toEqual({ outcome: 'key-reused', serial: current.serial });
      expect(await renewal.beginRenewal(request(current.serial, { publicKeySha256: other.current.publicKeySha256 }))).toEqual({ outcome: 'key-reused', serial: other.current.serial });

      const revokedAt = (await revocation.revokeCertificate(current.serial, { reasonCode: KEY_COMPROMISE, actor: 'contract' }));
      if (revokedAt.outcome !== 'revoked') throw new Error(`expected revoked, got ${revokedAt.outcome}`);
      let seen: RenewalCertificate | undefined;
      const refused = await renewal.beginRenewal(request(current.serial, { authorize: (p) => void (seen = p) }));
      expect(refused).toEqual({ outcome: 'revoked', reasonCode: KEY_COMPROMISE, revokedAt: revokedAt.revoked[0]!.revokedAt });
      expect(seen).toMatchObject({ revokedAt: revokedAt.revoked[0]!.revokedAt, revocationReason: KEY_COMPROMISE });
      expect(await renewal.beginRenewal(request(newSerial()))).toEqual({ outcome: 'not-found' });
    });

    it('descendants follow the lineage forward only, nearest first', async () => {
      const { renewal, current } = await issued();
      const second = await renewed(renewal, current.serial);
      const third = await renewed(renewal, second.serial);
      expect(await renewal.descendants(current.serial)).toEqual([second.serial, third.serial]);
      expect(await renewal.descendants(second.serial)).toEqual([third.serial]);
      expect(await renewal.descendants(third.serial)).toEqual([]);
    });

    it('a signed successor of a live predecessor is pending, due once the grace has passed, and done once the predecessor is revoked', async () => {
      const { renewal, revocation, current, deviceId } = await issued();
      const begun = await renewal.beginRenewal(request(current.serial));
      if (begun.outcome !== 'begun') throw new Error(`expected begun, got ${begun.outcome}`);
      expect(ownRows(await renewal.pendingSupersessions(LARGE), deviceId)).toEqual([]); // not signed yet
      const successor = await renewal.complete(begun.intent.serial, Buffer.from('signed-successor'));

      const pending = ownRows(await renewal.pendingSupersessions(LARGE), deviceId);
      expect(pending).toEqual([{ successorSerial: successor.serial, predecessorSerial: current.serial, deviceId, issuedAt: expect.any(Date) }]);
      expect(ownRows(await renewal.dueSupersessions(3600, LARGE), deviceId)).toEqual([]);
      expect(ownRows(await renewal.dueSupersessions(0, LARGE), deviceId)).toEqual(pending);

      await revocation.revokeCertificate(current.serial, { reasonCode: 4, actor: 'contract' });
      expect(ownRows(await renewal.pendingSupersessions(LARGE), deviceId)).toEqual([]);
      expect(ownRows(await renewal.dueSupersessions(0, LARGE), deviceId)).toEqual([]);
    });

    it('pending supersessions come oldest issuance first', async () => {
      const stores = makeStores();
      const a = await issued({}, stores);
      const b = await issued({}, stores);
      const first = await renewed(stores.renewal, a.current.serial);
      const second = await renewed(stores.renewal, b.current.serial);
      const serials = (await stores.renewal.pendingSupersessions(LARGE)).map((p) => p.successorSerial).filter((s) => s === first.serial || s === second.serial);
      expect(serials).toEqual([first.serial, second.serial]);
    });
  });

  describe(`${name}: rotation store contract`, () => {
    const device = (stores: RenewalPorts, options: { lifetimeMs?: number; signed?: boolean; profile?: string } = {}) => enrollCertificate(stores, newDeviceId('contract-rot'), options);
    const candidates = async (rotation: RotationStore, fraction: number) => (await rotation.renewalCandidates(fraction, LARGE)).map((c) => c.serial);

    it('candidates are live certificates inside the last windowFraction of their lifetime, soonest expiry first', async () => {
      const stores = makeStores();
      // notBefore is 60 s back: a 1 h certificate has used 1/60 of its lifetime, a 2 min one half.
      const long = await device(stores, { lifetimeMs: 3600_000 });
      const short = await device(stores, { lifetimeMs: 120_000 });
      const unsigned = await device(stores, { signed: false });
      const expired = await device(stores, { lifetimeMs: 30_000 });
      const revoked = await device(stores);
      await stores.revocation.revokeCertificate(revoked.serial, { reasonCode: KEY_COMPROMISE, actor: 'contract' });
      const mine = (serials: string[]) => serials.filter((s) => [long, short, unsigned, expired, revoked].some((c) => c.serial === s));

      expect(mine(await candidates(stores.renewal, 0.99))).toEqual([short.serial, long.serial]);
      expect(mine(await candidates(stores.renewal, 0.6))).toEqual([short.serial]);
      expect(mine(await candidates(stores.renewal, 0.3))).toEqual([]);
      const found = (await stores.renewal.renewalCandidates(0.99, LARGE)).find((c) => c.serial === short.serial);
      expect(found).toEqual({ serial: short.serial, deviceId: short.deviceId, notBefore: short.notBefore, notAfter: short.notAfter });
    });

    it('each certificate\'s window is the renewalWindowFraction of the profile version it was issued under, else the default', async () => {
      const stores = makeStores();
      const narrow = newDeviceId('narrow');
      const wide = newDeviceId('wide');
      await stores.profiles.create({ name: narrow, kind: 'device', renewalWindowFraction: 0.1, acl: [] }, 'contract');
      await stores.profiles.create({ name: wide, kind: 'device', renewalWindowFraction: 0.9, acl: [] }, 'contract');
      // 2 min certificates with notBefore 60 s back: half of each lifetime is left.
      const underNarrow = await device(stores, { lifetimeMs: 120_000, profile: narrow });
      const underWide = await device(stores, { lifetimeMs: 120_000, profile: wide });
      const underDefault = await device(stores, { lifetimeMs: 120_000 });
      const mine = async (defaultFraction: number) =>
        (await candidates(stores.renewal, defaultFraction)).filter((s) => [underNarrow, underWide, underDefault].some((c) => c.serial === s)).sort();

      // The stored certificate answers with its version's fraction (none for the built-in profile), renewed ones too.
      expect((await stores.enrollment.complete(underNarrow.serial, Buffer.from('again'))).renewalWindowFraction).toBe(0.1);
      expect((await stores.enrollment.complete(underDefault.serial, Buffer.from('again'))).renewalWindowFraction).toBeUndefined();
      expect((await stores.enrollment.complete(underWide.serial, Buffer.from('again'))).renewalWindowFraction).toBe(0.9);

      expect(await mine(0.3)).toEqual([underWide.serial]);
      expect(await mine(0.6)).toEqual([underWide.serial, underDefault.serial].sort());
      expect(await mine(0.99)).not.toContain(underNarrow.serial);

      // A new version moves the window of certificates issued under it, not of those issued under the old one.
      await stores.profiles.update({ name: narrow, kind: 'device', renewalWindowFraction: 0.9, acl: [] }, 'contract');
      const underNarrowV2 = await device(stores, { lifetimeMs: 120_000, profile: narrow });
      const found = await candidates(stores.renewal, 0.3);
      expect(found).toContain(underNarrowV2.serial);
      expect(found).not.toContain(underNarrow.serial);
      // A renewal takes the profile's current version, and its window.
      expect((await renewed(stores.renewal, underNarrow.serial)).renewalWindowFraction).toBe(0.9);
    });

    it('a hint is claimed once; a hinted or renewed certificate is no candidate any more', async () => {
      const stores = makeStores();
      const hinted = await device(stores);
      const renewedOne = await device(stores);
      expect(await stores.renewal.claimHint(hinted.serial)).toEqual({ serial: hinted.serial, deviceId: hinted.deviceId, notAfter: hinted.notAfter });
      expect(await stores.renewal.claimHint(hinted.serial)).toBeUndefined();
      const successor = await renewed(stores.renewal, renewedOne.serial);
      const found = await candidates(stores.renewal, 0.99);
      expect(found).not.toContain(hinted.serial);
      expect(found).not.toContain(renewedOne.serial);
      expect(found).toContain(successor.serial);
    });

    it('no hint for a certificate that is not live: unsigned, revoked, expired, renewed or unknown', async () => {
      const stores = makeStores();
      const unsigned = await device(stores, { signed: false });
      const expired = await device(stores, { lifetimeMs: 30_000 });
      const revoked = await device(stores);
      await stores.revocation.revokeCertificate(revoked.serial, { reasonCode: KEY_COMPROMISE, actor: 'contract' });
      const renewedOne = await device(stores);
      await renewed(stores.renewal, renewedOne.serial);
      for (const serial of [unsigned.serial, expired.serial, revoked.serial, renewedOne.serial, newSerial()]) {
        expect(await stores.renewal.claimHint(serial)).toBeUndefined();
      }
    });
  });
}
