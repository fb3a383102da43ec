// In-memory AdminCredentialStore (core/src/ports.ts) with the `ensure` that `enrolld up` uses: the same outcomes as
// db/src/admin-credential-store.ts, checked by test/contract/admin-credentials.contract.ts.
import type { AdminCredentialStore } from '@enrolld/core/ports.js';
import type { MemoryTables } from './memory-tables.js';

export function createMemoryAdminCredentialStore(tables: MemoryTables): AdminCredentialStore & { ensure(name: string, tokenHash: Buffer): Promise<boolean> } {
  return {
    async findByHash(tokenHash) {
      for (const [name, hash] of tables.adminCredentials) if (hash.equals(tokenHash)) return { name };
      return undefined;
    },
    async ensure(name, tokenHash) {
      // Name and token hash are both unique: a clash on either adds nothing.
      const hashTaken = [...tables.adminCredentials.values()].some((hash) => hash.equals(tokenHash));
      if (tables.adminCredentials.has(name) || hashTaken) return false;
      tables.adminCredentials.set(name, Buffer.from(tokenHash));
      return true;
    },
  };
}
