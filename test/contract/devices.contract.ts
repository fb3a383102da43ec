// The DeviceStore contract (core/src/ports.ts), run against every implementation: a device's status is its newest
// issued certificate's (pending without one), list pages by id (keyset, `after`) under status and prefix filters,
// and get returns the certificate history oldest first with the lineage links.
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import type { DeviceStore, EnrollmentStore, TokenStore } from '@enrolld/core/ports.js';
import type { RenewalStore } from '@enrolld/core/renewal/ports.js';
import type { RevocationStore } from '@enrolld/core/revocation/ports.js';
import { enrollCertificate, intentFor, newDeviceId, sha256 } from './store-fixtures.js';

export interface DevicePorts {
  tokens: TokenStore;
  enrollment: EnrollmentStore;
  revocation: RevocationStore;
  renewal: RenewalStore;
  devices: DeviceStore;
}

const CESSATION_OF_OPERATION = 5; // RFC 5280 §5.3.1

export function describeDeviceStoreContract(name: string, makeStores: () => DevicePorts): void {
  describe(`${name}: device store contract`, () => {
    /** Four devices under one fresh prefix, one per status; the ids differ only in their last letter. */
    async function fleet() {
      const stores = makeStores();
      const prefix = `${newDeviceId('fleet')}-`;
      const ids = { active: `${prefix}a`, expired: `${prefix}b`, pending: `${prefix}c`, revoked: `${prefix}d` };
      const active = await enrollCertificate(stores, ids.active);
      const expired = await enrollCertificate(stores, ids.expired, { lifetimeMs: 30_000 });
      await enrollCertificate(stores, ids.pending, { signed: false });
      const revoked = await enrollCertificate(stores, ids.revoked);
      await stores.revocation.revokeDevice(ids.revoked, { reasonCode: CESSATION_OF_OPERATION, actor: 'contract' });
      return { ...stores, prefix, ids, serials: { active: active.serial, expired: expired.serial, revoked: revoked.serial } };
    }

    it('summarises each device by its newest issued certificate; one without any is pending', async () => {
      const { devices, prefix, ids, serials } = await fleet();
      const listed = await devices.list({ limit: 10, prefix });
      expect(listed.map((d) => [d.id, d.status, d.currentSerial])).toEqual([
        [ids.active, 'active', serials.active],
        [ids.expired, 'expired', serials.expired],
        [ids.pending, 'pending', null],
        [ids.revoked, 'revoked', serials.revoked],
      ]);
      expect(listed[2]!.notAfter).toBeNull();
      expect(listed.every((d) => d.profile === 'device' && !Number.isNaN(Date.parse(d.createdAt)))).toBe(true);
    });

    it('admins are not of the fleet: a prefix that holds an admin lists only the devices, and get does not find it', async () => {
      const { devices, prefix, ids, ...stores } = await fleet();
      const adminId = `${prefix}admin`;
      await enrollCertificate(stores, adminId, { kind: 'admin' });
      expect((await devices.list({ limit: 10, prefix })).map((d) => d.id)).toEqual([ids.active, ids.expired, ids.pending, ids.revoked]);
      expect(await devices.get(adminId)).toBeUndefined();
      expect(await devices.get(ids.active)).toBeDefined();
    });

    it('a device records the token batch of its last enrollment; none before it enrolled', async () => {
      const stores = makeStores();
      const deviceId = newDeviceId('batch');
      const [first, second] = [randomUUID(), randomUUID()];
      await enrollCertificate(stores, deviceId, { batchId: first });
      expect((await stores.devices.get(deviceId))?.tokenBatch).toBe(first);
      // A token of another batch waits unspent: the device keeps the batch it enrolled with.
      await stores.tokens.createTokens([{ kind: 'device', deviceId, tokenHash: randomBytes(32), expiresAt: new Date(Date.now() + 3600_000), profile: 'device', batchId: second }], 'contract');
      expect((await stores.devices.list({ limit: 1, prefix: deviceId }))[0]?.tokenBatch).toBe(first);
      await enrollCertificate(stores, deviceId, { batchId: second });
      expect((await stores.devices.get(deviceId))?.tokenBatch).toBe(second);
      const waiting = newDeviceId('batch-pending');
      await stores.tokens.createTokens([{ kind: 'device', deviceId: waiting, tokenHash: randomBytes(32), expiresAt: new Date(Date.now() + 3600_000), profile: 'device', batchId: first }], 'contract');
      expect((await stores.devices.list({ limit: 1, prefix: waiting }))[0]?.tokenBatch).toBeNull();
    });

    it('filters by status and pages by id with after and limit', async () => {
      const { devices, prefix, ids } = await fleet();
      expect((await devices.list({ limit: 10, prefix, status: 'revoked' })).map((d) => d.id)).toEqual([ids.revoked]);
      expect((await devices.list({ limit: 10, prefix, status: 'pending' })).map((d) => d.id)).toEqual([ids.pending]);
      const first = await devices.list({ limit: 2, prefix });
      expect(first.map((d) => d.id)).toEqual([ids.active, ids.expired]);
      const second = await devices.list({ limit: 2, prefix, after: first.at(-1)!.id });
      expect(second.map((d) => d.id)).toEqual([ids.pending, ids.revoked]);
      expect(await devices.list({ limit: 2, prefix, after: ids.revoked })).toEqual([]);
      expect(await devices.list({ limit: 10, prefix: `${prefix}zz` })).toEqual([]);
    });

    it('get returns the history oldest first, with statuses, reasons and the renewal link; unknown is undefined', async () => {
      const stores = makeStores();
      const deviceId = newDeviceId('history');
      const first = await enrollCertificate(stores, deviceId);
      const csr = sha256(`${deviceId}-renewal`);
      const renewed = await stores.renewal.beginRenewal({
        predecessorSerial: first.serial,
        csrSha256: csr,
        publicKeySha256: sha256(`${deviceId}-new-key`),
        inFlightSeconds: 0,
        authorize: () => undefined,
        buildIntent: (p) => intentFor(p, csr, { predecessorSerial: p.serial, publicKeySha256: sha256(`${deviceId}-new-key`) }),
      });
      if (renewed.outcome !== 'begun') throw new Error(`expected begun, got ${renewed.outcome}`);
      const successor = await stores.renewal.complete(renewed.intent.serial, Buffer.from('signed-successor'));
      await stores.revocation.revokeCertificate(first.serial, { reasonCode: 4, actor: 'contract' });

      const detail = await stores.devices.get(deviceId);
      expect(detail).toMatchObject({ id: deviceId, status: 'active', currentSerial: successor.serial, notAfter: successor.notAfter.toISOString() });
      expect(detail!.certificates).toEqual([
        expect.objectContaining({
          serial: first.serial,
          status: 'revoked',
          revocationReason: 'superseded',
          predecessorSerial: null,
          notBefore: first.notBefore.toISOString(),
          notAfter: first.notAfter.toISOString(),
        }),
        expect.objectContaining({ serial: successor.serial, status: 'active', revokedAt: null, revocationReason: null, predecessorSerial: first.serial }),
      ]);
      expect(detail!.certificates.every((c) => c.issuedAt !== null)).toBe(true);
      expect(detail!.certificates[0]!.revokedAt).not.toBeNull();
      expect(await stores.devices.get(newDeviceId('nobody'))).toBeUndefined();
    });
  });
}
