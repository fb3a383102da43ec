// In-memory AdminStore (core/src/admins/ports.ts) over the shared tables: the same outcomes as db/src/admin-store.ts,
// checked by test/contract/admins.contract.ts. JavaScript runs one change at a time, which stands in for the lock.
import type { AdminChangeOptions, AdminRecord, AdminStore } from '@enrolld/core/admins/ports.js';
import type { AdminRow, CertificateRow, MemoryTables } from './memory-tables.js';

export function createMemoryAdminStore(tables: MemoryTables): AdminStore {
  const isLive = (c: CertificateRow) => c.der !== null && c.revokedAt === null && c.notAfter > tables.clock.now();
  /** The newest live certificate of `name` (of two issued in the same millisecond, the later one, as the device fake). */
  const currentOf = (name: string) =>
    [...tables.certificates.values()]
      .filter((c) => c.deviceId === name && isLive(c))
      .reduce<CertificateRow | undefined>((newest, c) => (!newest || c.issuedAt! >= newest.issuedAt! ? c : newest), undefined);

  /** As db/src/admin-store.ts wouldLeaveNoOwner: no other active owner with a live certificate would remain. */
  function wouldLeaveNoOwner(name: string, current: AdminRow, options: AdminChangeOptions): boolean {
    if (!options.keepAnOwner || current.role !== 'owner' || current.revokedAt) return false;
    return ![...tables.admins].some(([other, row]) => other !== name && row.role === 'owner' && !row.revokedAt && currentOf(other) !== undefined);
  }

  const touch = (row: AdminRow, actor: string) => {
    row.updatedAt = tables.clock.now();
    row.updatedBy = actor;
  };

  return {
    async certificate(serial) {
      const cert = tables.certificates.get(serial);
      if (!cert) return undefined;
      const admin = cert.kind === 'admin' ? tables.admins.get(cert.deviceId) : undefined;
      return {
        kind: cert.kind,
        name: cert.deviceId,
        der: cert.der,
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        revokedAt: cert.revokedAt,
        admin: admin ? { role: admin.role, revoked: admin.revokedAt !== null } : undefined,
      };
    },

    async activate(name, role, actor) {
      if (!tables.devices.has(name)) throw new Error(`admins.name ${name} violates its foreign key to devices`);
      const now = tables.clock.now();
      const row = tables.admins.get(name);
      if (!row) {
        tables.admins.set(name, { role, createdAt: now, createdBy: actor, updatedAt: now, updatedBy: actor, revokedAt: null });
        return;
      }
      row.role = role;
      row.revokedAt = null;
      touch(row, actor);
    },

    async setRole(name, role, actor, options) {
      const row = tables.admins.get(name);
      if (!row || row.revokedAt) return { outcome: 'missing' };
      if (row.role === role) return { outcome: 'unchanged' };
      if (role !== 'owner' && wouldLeaveNoOwner(name, row, options)) return { outcome: 'last-owner' };
      const from = row.role;
      row.role = role;
      touch(row, actor);
      return { outcome: 'updated', from };
    },

    async markRevoked(name, actor, options) {
      const row = tables.admins.get(name);
      if (!row) return { outcome: 'missing' };
      if (row.revokedAt) return { outcome: 'already-revoked' };
      if (wouldLeaveNoOwner(name, row, options)) return { outcome: 'last-owner' };
      row.revokedAt = tables.clock.now();
      touch(row, actor);
      return { outcome: 'revoked' };
    },

    async list(): Promise<AdminRecord[]> {
      return [...tables.admins.keys()].sort().map((name) => {
        const row = tables.admins.get(name)!;
        const current = currentOf(name);
        return {
          name,
          role: row.role,
          status: row.revokedAt ? 'revoked' : 'active',
          createdAt: row.createdAt,
          createdBy: row.createdBy,
          updatedAt: row.updatedAt,
          updatedBy: row.updatedBy,
          currentSerial: current?.serial ?? null,
          notAfter: current?.notAfter ?? null,
        };
      });
    },
  };
}
