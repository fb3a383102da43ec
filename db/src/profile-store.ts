// Profiles in Postgres (db/migrations/006_profiles.sql): every version a row, the current one the highest live version.
import type pg from 'pg';
import type { Profile, ProfileSpec } from '@enrolld/protocol';
import type { ProfileDeleteResult, ProfileStore, ProfileWriteResult } from '@enrolld/core/profiles/ports.js';
import type { ProfileFeed } from '@enrolld/core/acl/profile-acls.js';
import { createPgListener } from './pg-listener.js';
import { inTransaction } from './transaction.js';

export const PROFILE_CHANNEL = 'enrolld_profile';

interface ProfileRow {
  name: string;
  version: number;
  document: ProfileSpec;
  builtin: boolean;
  created_at: Date;
}

const CURRENT = `
  SELECT DISTINCT ON (name) name, version, document, builtin, created_at
    FROM profiles WHERE deleted_at IS NULL`;

function toProfile(row: ProfileRow): Profile {
  return { ...row.document, name: row.name, version: row.version, builtin: row.builtin, createdAt: row.created_at.toISOString() };
}

/** Serialises writers of one profile name (the version number is max + 1) and a delete with token creation under it. */
export const lockProfileName = (client: pg.ClientBase, name: string) =>
  client.query("SELECT pg_advisory_xact_lock(hashtextextended('enrolld_profile:' || $1, 0))", [name]);

async function insertVersion(client: pg.ClientBase, spec: ProfileSpec, actor: string): Promise<Profile> {
  const { rows } = await client.query<ProfileRow>(
    `INSERT INTO profiles (name, version, kind, document, created_by)
     SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4 FROM profiles WHERE name = $1
     RETURNING name, version, document, builtin, created_at`,
    [spec.name, spec.kind, JSON.stringify(spec), actor],
  );
  await client.query(`INSERT INTO audit_events (action, actor, detail) VALUES ('profile.stored', $1, jsonb_build_object('name', $2::text, 'version', $3::int))`, [
    actor, spec.name, rows[0]!.version,
  ]);
  return toProfile(rows[0]!);
}

export function createPgProfileStore(pool: pg.Pool): ProfileStore {
  const live = async (client: pg.ClientBase, name: string) =>
    (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM profiles WHERE name = $1 AND deleted_at IS NULL', [name])).rows[0]!.n > 0;

  return {
    async list() {
      const { rows } = await pool.query<ProfileRow>(`${CURRENT} ORDER BY name, version DESC`);
      return rows.map(toProfile);
    },

    async get(name) {
      const { rows } = await pool.query<ProfileRow>(`${CURRENT} AND name = $1 ORDER BY name, version DESC`, [name]);
      return rows[0] ? toProfile(rows[0]) : undefined;
    },

    async create(spec, actor): Promise<ProfileWriteResult> {
      return inTransaction(pool, 'none', async (client) => {
        await lockProfileName(client, spec.name);
        if (await live(client, spec.name)) return { outcome: 'exists' };
        return { outcome: 'stored', profile: await insertVersion(client, spec, actor) };
      });
    },

    async update(spec, actor): Promise<ProfileWriteResult> {
      return inTransaction(pool, 'none', async (client) => {
        await lockProfileName(client, spec.name);
        if (!(await live(client, spec.name))) return { outcome: 'missing' };
        return { outcome: 'stored', profile: await insertVersion(client, spec, actor) };
      });
    },

    async delete(name, actor): Promise<ProfileDeleteResult> {
      return inTransaction(pool, 'none', async (client) => {
        await lockProfileName(client, name);
        if (!(await live(client, name))) return { outcome: 'missing' };
        const { rows } = await client.query<{ certificates: number; tokens: number }>(
          `SELECT (SELECT count(*)::int FROM certificates WHERE profile = $1 AND revoked_at IS NULL AND not_after > now()) AS certificates,
                  (SELECT count(*)::int FROM bootstrap_tokens WHERE profile = $1 AND used_at IS NULL AND expires_at > now()) AS tokens`,
          [name],
        );
        const use = rows[0]!;
        if (use.certificates > 0 || use.tokens > 0) return { outcome: 'in-use', ...use };
        await client.query('UPDATE profiles SET deleted_at = now() WHERE name = $1 AND deleted_at IS NULL', [name]);
        await client.query(`INSERT INTO audit_events (action, actor, detail) VALUES ('profile.deleted', $1, jsonb_build_object('name', $2::text))`, [actor, name]);
        return { outcome: 'deleted' };
      });
    },
  };
}

/** Profile changes (the trigger in 006_profiles.sql sends the name) on a dedicated LISTEN connection. */
export function createPgProfileListener(options: { connectionString: string; applicationName?: string; reconnectDelayMs?: number }): ProfileFeed {
  const listener = createPgListener({
    connectionString: options.connectionString,
    channels: [PROFILE_CHANNEL],
    applicationName: options.applicationName ?? 'enrolld-profile-listener',
    ...(options.reconnectDelayMs !== undefined ? { reconnectDelayMs: options.reconnectDelayMs } : {}),
  });
  return {
    start: (h) => listener.start({ onNotification: (_channel, name) => h.onChanged(name), onConnection: (connected, error) => h.onConnection(connected, error) }),
    stop: () => listener.stop(),
  };
}
