// The AdminCredentialStore contract (core/src/ports.ts), with the `ensure` that registers the first credential at
// `enrolld up`: run against every implementation.
import { describe, expect, it } from '@jest/globals';
import type { AdminCredentialStore } from '@enrolld/core/ports.js';
import { newDeviceId, newTokenHash } from './store-fixtures.js';

export type AdminCredentialPorts = AdminCredentialStore & { ensure(name: string, tokenHash: Buffer): Promise<boolean> };

export function describeAdminCredentialStoreContract(name: string, makeStore: () => AdminCredentialPorts): void {
  describe(`${name}: admin credential store contract`, () => {
    it('finds a registered credential by its token hash, and nothing for another hash', async () => {
      const store = makeStore();
      const admin = newDeviceId('admin');
      const hash = newTokenHash();
      expect(await store.ensure(admin, hash)).toBe(true);
      expect(await store.findByHash(hash)).toEqual({ name: admin });
      expect(await store.findByHash(newTokenHash())).toBeUndefined();
    });

    it('ensure is idempotent: a name or a token hash already registered adds nothing and keeps the first', async () => {
      const store = makeStore();
      const admin = newDeviceId('admin');
      const hash = newTokenHash();
      expect(await store.ensure(admin, hash)).toBe(true);
      expect(await store.ensure(admin, hash)).toBe(false);
      const otherHash = newTokenHash();
      expect(await store.ensure(admin, otherHash)).toBe(false);
      expect(await store.findByHash(otherHash)).toBeUndefined();
      expect(await store.ensure(newDeviceId('admin'), hash)).toBe(false);
      expect(await store.findByHash(hash)).toEqual({ name: admin });
    });
  });
}
