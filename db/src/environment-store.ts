// Environments in Postgres (db/migrations/011_environments.sql): the public chain of each, its profiles' home, and the
// lock that keeps a token from being made in an environment while it is deleted.
import type pg from 'pg';
import type { EnvironmentChain, EnvironmentRecord, EnvironmentStore } from '@enrolld/core/environments/ports.js';
import { inTransaction } from './transaction.js';

interface EnvironmentRow {
  name: string;
  own_root: boolean;
  issuing_certificate: string | null;
  root_certificate: string | null;
  created_at: Date;
  created_by: string;
  deleted_at: Date | null;
}

const COLUMNS = 'name, own_root, issuing_certificate, root_certificate, created_at, created_by, deleted_at';

function toRecord(row: EnvironmentRow): EnvironmentRecord | undefined {
  // `default` has no chain until the API recorded its home's CA.
  if (row.issuing_certificate === null || row.root_certificate === null) return undefined;
  return {
    name: row.name,
    ownRoot: row.own_root,
    issuingCertificatePem: row.issuing_certificate,
    rootCertificatePem: row.root_certificate,
    createdAt: row.created_at,
    createdBy: row.created_by,
    deletedAt: row.deleted_at,
  };
}

const lockKey = "hashtextextended('enrolld_environment:' || $1, 0)";

/** Serialises creating and deleting an environment of this name. */
const lockEnvironment = (client: pg.ClientBase, name: string) => client.query(`SELECT pg_advisory_xact_lock(${lockKey})`, [name]);

/**
 * Held by a writer that adds to an environment (a token batch): many at once, never while the environment is deleted.
 * Returns whether the environment is live.
 */
export async function lockLiveEnvironment(client: pg.ClientBase, name: string): Promise<boolean> {
  await client.query(`SELECT pg_advisory_xact_lock_shared(${lockKey})`, [name]);
  const { rowCount } = await client.query('SELECT 1 FROM environments WHERE name = $1 AND deleted_at IS NULL', [name]);
  return rowCount === 1;
}

const samePem = (a: string, b: string) => a.replace(/\s+/g, '') === b.replace(/\s+/g, '');

export function createPgEnvironmentStore(pool: pg.Pool): EnvironmentStore {
  return {
    async list() {
      const { rows } = await pool.query<EnvironmentRow>(`SELECT ${COLUMNS} FROM environments WHERE deleted_at IS NULL ORDER BY name`);
      return rows.map(toRecord).filter((e): e is EnvironmentRecord => e !== undefined);
    },

    async get(name) {
      const { rows } = await pool.query<EnvironmentRow>(`SELECT ${COLUMNS} FROM environments WHERE name = $1`, [name]);
      return rows[0] ? toRecord(rows[0]) : undefined;
    },

    async create(input, materialize) {
      return inTransaction(pool, 'none', async (client) => {
        await lockEnvironment(client, input.name);
        const taken = await client.query<{ deleted: boolean }>('SELECT deleted_at IS NOT NULL AS deleted FROM environments WHERE name = $1', [input.name]);
        if (taken.rows[0]) return { outcome: 'exists', deleted: taken.rows[0].deleted } as const;
        // Under the lock, so two creators of one name never both make keys; a rollback after this leaves key files
        // that no row names (the next create of the name replaces them).
        const chain = await materialize();
        const { rows } = await client.query<EnvironmentRow>(
          `INSERT INTO environments (name, own_root, issuing_certificate, root_certificate, created_by) VALUES ($1, $2, $3, $4, $5)
           RETURNING ${COLUMNS}`,
          [input.name, input.ownRoot, chain.issuingCertificatePem, chain.rootCertificatePem, input.actor],
        );
        // The built-in device and service profiles exist in every environment, as shipped (their rows in `default` are
        // never updated). Admins are identities of `default` only, so their profile stays there.
        await client.query(
          `INSERT INTO profiles (environment, name, version, kind, document, builtin, created_by)
           SELECT $1, name, version, kind, document, true, $2 FROM profiles WHERE environment = 'default' AND builtin AND kind <> 'admin'`,
          [input.name, input.actor],
        );
        await client.query(
          `INSERT INTO audit_events (action, actor, request_id, detail)
           VALUES ('environment.created', $1, $2, jsonb_build_object('name', $3::text, 'ownRoot', $4::boolean))`,
          [input.actor, input.requestId ?? null, input.name, input.ownRoot],
        );
        return { outcome: 'created', environment: toRecord(rows[0]!)! } as const;
      });
    },

    async delete(name, command) {
      return inTransaction(pool, 'none', async (client) => {
        await lockEnvironment(client, name);
        const live = await client.query('SELECT 1 FROM environments WHERE name = $1 AND deleted_at IS NULL', [name]);
        if (live.rowCount === 0) return { outcome: 'missing' } as const;
        // Under the exclusive lock no token batch is being added (they hold it shared); intents not yet signed count as
        // live, since a retry may still sign them.
        const { rows } = await client.query<{ certificates: number; tokens: number }>(
          `SELECT (SELECT count(*)::int FROM certificates WHERE environment = $1 AND revoked_at IS NULL AND not_after > now()) AS certificates,
                  (SELECT count(*)::int FROM bootstrap_tokens WHERE environment = $1 AND used_at IS NULL AND expires_at > now()) AS tokens`,
          [name],
        );
        const use = rows[0]!;
        if (use.certificates > 0 || use.tokens > 0) return { outcome: 'in-use', ...use } as const;
        await client.query('UPDATE environments SET deleted_at = now() WHERE name = $1', [name]);
        await client.query('UPDATE profiles SET deleted_at = now() WHERE environment = $1 AND deleted_at IS NULL', [name]);
        await client.query(
          `INSERT INTO audit_events (action, actor, request_id, detail) VALUES ('environment.deleted', $1, $2, jsonb_build_object('name', $3::text))`,
          [command.actor, command.requestId ?? null, name],
        );
        return { outcome: 'deleted' } as const;
      });
    },

    async recordDefaultChain(chain: EnvironmentChain) {
      const { rows } = await pool.query<{ issuing_certificate: string; root_certificate: string }>(
        `WITH recorded AS (
           UPDATE environments SET issuing_certificate = $1, root_certificate = $2
            WHERE name = 'default' AND issuing_certificate IS NULL
           RETURNING issuing_certificate, root_certificate)
         SELECT issuing_certificate, root_certificate FROM recorded
         UNION ALL
         SELECT issuing_certificate, root_certificate FROM environments WHERE name = 'default' AND NOT EXISTS (SELECT 1 FROM recorded)`,
        [chain.issuingCertificatePem, chain.rootCertificatePem],
      );
      const row = rows[0]!;
      if (samePem(row.issuing_certificate, chain.issuingCertificatePem) && samePem(row.root_certificate, chain.rootCertificatePem)) return { outcome: 'recorded' };
      return { outcome: 'mismatch', recorded: { issuingCertificatePem: row.issuing_certificate, rootCertificatePem: row.root_certificate } };
    },
  };
}
