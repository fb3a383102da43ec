// The AdminStore contract (core/src/admins/ports.ts), run against every implementation: the certificate lookup the
// admin API authenticates with, the records and their role, and the last-owner guard of ADMIN_BEARER=off.
// Certificates are made through the enrollment ports, as in production.
import { describe, expect, it } from '@jest/globals';
import type { AdminStore } from '@enrolld/core/admins/ports.js';
import type { RevocationStore } from '@enrolld/core/revocation/ports.js';
import type { EnrollmentPorts } from './enrollment.contract.js';
import { enrollCertificate, newDeviceId, newSerial } from './store-fixtures.js';

const KEEP = { keepAnOwner: true };
const FREE = { keepAnOwner: false };

export function describeAdminStoreContract(name: string, makeStores: () => EnrollmentPorts & { admins: AdminStore; revocation: RevocationStore }): void {
  describe(`${name}: admin store contract`, () => {
    /** An admin identity with one live certificate and an active record of `role`. */
    async function admin(stores: ReturnType<typeof makeStores>, role: 'viewer' | 'operator' | 'owner', options: { lifetimeMs?: number } = {}) {
      const adminName = newDeviceId('contract-admin');
      const cert = await enrollCertificate(stores, adminName, { kind: 'admin', ...options });
      await stores.admins.activate(adminName, role, 'contract');
      return { name: adminName, serial: cert.serial };
    }

    it('finds an admin certificate with its record, a device certificate without one, and nothing for an unknown serial', async () => {
      const stores = makeStores();
      const alice = await admin(stores, 'operator');
      const found = await stores.admins.certificate(alice.serial);
      expect(found).toMatchObject({ kind: 'admin', name: alice.name, revokedAt: null, admin: { role: 'operator', revoked: false } });
      expect(found!.der).toEqual(Buffer.from(`signed-${alice.serial}`));
      expect(found!.notAfter.getTime()).toBeGreaterThan(Date.now());

      const deviceId = newDeviceId('contract-device');
      const device = await enrollCertificate(stores, deviceId);
      expect(await stores.admins.certificate(device.serial)).toMatchObject({ kind: 'device', name: deviceId, admin: undefined });
      expect(await stores.admins.certificate(newSerial())).toBeUndefined();
    });

    it('changes a role once: updated with the old role, then unchanged; an unknown admin is missing', async () => {
      const stores = makeStores();
      const bob = await admin(stores, 'viewer');
      expect(await stores.admins.setRole(bob.name, 'operator', 'contract', FREE)).toEqual({ outcome: 'updated', from: 'viewer' });
      expect(await stores.admins.setRole(bob.name, 'operator', 'contract', FREE)).toEqual({ outcome: 'unchanged' });
      expect((await stores.admins.certificate(bob.serial))!.admin).toEqual({ role: 'operator', revoked: false });
      expect(await stores.admins.setRole(newDeviceId('nobody'), 'owner', 'contract', FREE)).toEqual({ outcome: 'missing' });
    });

    it('a revoked admin grants nothing, takes no role, and is active again (with a new role) after activate', async () => {
      const stores = makeStores();
      const carol = await admin(stores, 'owner');
      expect(await stores.admins.markRevoked(carol.name, 'contract', FREE)).toEqual({ outcome: 'revoked' });
      expect(await stores.admins.markRevoked(carol.name, 'contract', FREE)).toEqual({ outcome: 'already-revoked' });
      expect((await stores.admins.certificate(carol.serial))!.admin).toEqual({ role: 'owner', revoked: true });
      expect(await stores.admins.setRole(carol.name, 'viewer', 'contract', FREE)).toEqual({ outcome: 'missing' });
      expect(await stores.admins.markRevoked(newDeviceId('nobody'), 'contract', FREE)).toEqual({ outcome: 'missing' });
      await stores.admins.activate(carol.name, 'viewer', 'contract-again');
      expect((await stores.admins.certificate(carol.serial))!.admin).toEqual({ role: 'viewer', revoked: false });
      expect((await stores.admins.list()).find((a) => a.name === carol.name)).toMatchObject({ status: 'active', role: 'viewer', updatedBy: 'contract-again', createdBy: 'contract' });
    });

    it('keepAnOwner: the last owner with a live certificate is neither demoted nor revoked; another live owner allows both', async () => {
      const stores = makeStores();
      // Other test cases of this store may have left owners: revoke every active one but ours.
      for (const other of await stores.admins.list()) if (other.status === 'active') await stores.admins.markRevoked(other.name, 'contract', FREE);
      const last = await admin(stores, 'owner');
      expect(await stores.admins.setRole(last.name, 'viewer', 'contract', KEEP)).toEqual({ outcome: 'last-owner' });
      expect(await stores.admins.markRevoked(last.name, 'contract', KEEP)).toEqual({ outcome: 'last-owner' });
      // An owner whose only certificate is revoked cannot act: it does not count.
      const revokedCert = await admin(stores, 'owner');
      await stores.revocation.revokeDevice(revokedCert.name, { reasonCode: 1, actor: 'contract', identities: 'admins' });
      expect(await stores.admins.markRevoked(last.name, 'contract', KEEP)).toEqual({ outcome: 'last-owner' });
      // An expired one does not either.
      await admin(stores, 'owner', { lifetimeMs: 1000 });
      expect(await stores.admins.setRole(last.name, 'operator', 'contract', KEEP)).toEqual({ outcome: 'last-owner' });
      // Without the guard (the bearer token is on) the change is made.
      expect(await stores.admins.setRole(last.name, 'operator', 'contract', FREE)).toEqual({ outcome: 'updated', from: 'owner' });
      expect(await stores.admins.setRole(last.name, 'owner', 'contract', KEEP)).toEqual({ outcome: 'updated', from: 'operator' });
      // A second owner with a live certificate: the first may go.
      await admin(stores, 'owner');
      expect(await stores.admins.setRole(last.name, 'viewer', 'contract', KEEP)).toEqual({ outcome: 'updated', from: 'owner' });
    });

    it('lists every admin with its newest live certificate; none once it is revoked', async () => {
      const stores = makeStores();
      const dave = await admin(stores, 'viewer');
      const newer = await enrollCertificate(stores, dave.name, { kind: 'admin' });
      let listed = (await stores.admins.list()).find((a) => a.name === dave.name)!;
      expect(listed).toMatchObject({ role: 'viewer', status: 'active', currentSerial: newer.serial, createdBy: 'contract' });
      await stores.revocation.revokeDevice(dave.name, { reasonCode: 5, actor: 'contract', identities: 'admins' });
      listed = (await stores.admins.list()).find((a) => a.name === dave.name)!;
      expect(listed).toMatchObject({ currentSerial: null, notAfter: null });
    });
  });
}
