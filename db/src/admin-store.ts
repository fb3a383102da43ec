// Admin records (db/migrations/012_admins.sql) and the certificate lookup that authenticates an admin client
// certificate. Implements core/src/admins/ports.ts.
import type pg from 'pg';
import type { AdminRole, IdentityKind } from '@enrolld/protocol';
import type { AdminChangeOptions, AdminRecord, AdminRevocationMark, AdminRoleChange, AdminStore, StoredClientCertificate } from '@enrolld/core/admins/ports.js';
import { ADMINS_LOCK_KEY, inTransaction } from './transaction.js';

interface AdminRow {
  name: string;
  role: AdminRole;
  created_at: Date;
  created_by: string;
  updated_at: Date;
  updated_by: string;
  revoked_at: Date | null;
  current_serial: string | null;
  not_after: Date | null;
}

/** A live certificate: issued, unrevoked, unexpired. */
const LIVE = 'c.der IS NOT NULL AND c.revoked_at IS NULL AND c.not_after > now()';

const ADMIN_SELECT = `
  SELECT a.name, a.role, a.created_at, a.created_by, a.updated_at, a.updated_by, a.revoked_at,
         cur.serial AS current_serial, cur.not_after
    FROM admins a
    LEFT JOIN LATERAL (SELECT c.serial, c.not_after FROM certificates c
                        WHERE c.device_id = a.name AND ${LIVE} ORDER BY c.issued_at DESC LIMIT 1) cur ON true`;

/** Active owners other than $1 that hold a live certificate: who could still act as owner without the bearer token. */
const OTHER_LIVE_OWNERS = `
  SELECT count(*)::int AS n FROM admins a
   WHERE a.role = 'owner' AND a.revoked_at IS NULL AND a.name <> $1
     AND EXISTS (SELECT 1 FROM certificates c WHERE c.device_id = a.name AND ${LIVE})`;

const toRecord = (r: AdminRow): AdminRecord => ({
  name: r.name,
  role: r.role,
  status: r.revoked_at ? 'revoked' : 'active',
  createdAt: r.created_at,
  createdBy: r.created_by,
  updatedAt: r.updated_at,
  updatedBy: r.updated_by,
  currentSerial: r.current_serial,
  notAfter: r.not_after,
});

type Locked = { role: AdminRole; revoked: boolean } | undefined;

/** Takes the admins lock and reads the record of `name` as it stands under it. */
async function lockAdmin(client: pg.ClientBase, name: string): Promise<Locked> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [ADMINS_LOCK_KEY]);
  const { rows } = await client.query<{ role: AdminRole; revoked_at: Date | null }>('SELECT role, revoked_at FROM admins WHERE name = $1', [name]);
  return rows[0] ? { role: rows[0].role, revoked: rows[0].revoked_at !== null } : undefined;
}

/** Whether taking the owner role away from `name` would leave no owner able to act (only asked when it matters). */
async function wouldLeaveNoOwner(client: pg.ClientBase, name: string, current: NonNullable<Locked>, options: AdminChangeOptions): Promise<boolean> {
  if (!options.keepAnOwner || current.role !== 'owner' || current.revoked) return false;
  const { rows } = await client.query<{ n: number }>(OTHER_LIVE_OWNERS, [name]);
  return rows[0]!.n === 0;
}

const audit = (client: pg.ClientBase, action: string, actor: string, name: string, detail: Record<string, unknown>) =>
  client.query('INSERT INTO audit_events (action, actor, device_id, detail) VALUES ($1, $2, $3, $4)', [action, actor, name, detail]);

export function createPgAdminStore(pool: pg.Pool): AdminStore {
  return {
    async certificate(serial: string): Promise<StoredClientCertificate | undefined> {
      const { rows } = await pool.query<{
        kind: IdentityKind; name: string; der: Buffer | null; not_before: Date; not_after: Date; revoked_at: Date | null;
        role: AdminRole | null; admin_revoked_at: Date | null;
      }>(
        `SELECT c.identity_kind AS kind, c.device_id AS name, c.der, c.not_before, c.not_after, c.revoked_at,
                a.role, a.revoked_at AS admin_revoked_at
           FROM certificates c LEFT JOIN admins a ON a.name = c.device_id AND c.identity_kind = 'admin'
          WHERE c.serial = $1`,
        [serial],
      );
      const r = rows[0];
      if (!r) return undefined;
      return {
        kind: r.kind,
        name: r.name,
        der: r.der,
        notBefore: r.not_before,
        notAfter: r.not_after,
        revokedAt: r.revoked_at,
        admin: r.role ? { role: r.role, revoked: r.admin_revoked_at !== null } : undefined,
      };
    },

    async activate(name, role, actor) {
      await inTransaction(pool, 'none', async (client) => {
        await client.query(
          `INSERT INTO admins (name, role, created_by, updated_by) VALUES ($1, $2, $3, $3)
           ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, updated_at = now(), updated_by = EXCLUDED.updated_by, revoked_at = NULL`,
          [name, role, actor],
        );
        await audit(client, 'admin.created', actor, name, { role });
      });
    },

    async setRole(name, role, actor, options): Promise<AdminRoleChange> {
      return inTransaction(pool, 'none', async (client) => {
        const current = await lockAdmin(client, name);
        if (!current || current.revoked) return { outcome: 'missing' };
        if (current.role === role) return { outcome: 'unchanged' };
        if (role !== 'owner' && (await wouldLeaveNoOwner(client, name, current, options))) return { outcome: 'last-owner' };
        await client.query('UPDATE admins SET role = $2, updated_at = now(), updated_by = $3 WHERE name = $1', [name, role, actor]);
        await audit(client, 'admin.role-changed', actor, name, { from: current.role, to: role });
        return { outcome: 'updated', from: current.role };
      });
    },

    async markRevoked(name, actor, options): Promise<AdminRevocationMark> {
      return inTransaction(pool, 'none', async (client) => {
        const current = await lockAdmin(client, name);
        if (!current) return { outcome: 'missing' };
        if (current.revoked) return { outcome: 'already-revoked' };
        if (await wouldLeaveNoOwner(client, name, current, options)) return { outcome: 'last-owner' };
        await client.query('UPDATE admins SET revoked_at = now(), updated_at = now(), updated_by = $2 WHERE name = $1', [name, actor]);
        await audit(client, 'admin.revoked', actor, name, { role: current.role });
        return { outcome: 'revoked' };
      });
    },

    async list() {
      const { rows } = await pool.query<AdminRow>(`${ADMIN_SELECT} ORDER BY a.name`);
      return rows.map(toRecord);
    },
  };
}
