// Profiles in Postgres (db/migrations/006_profiles.sql): every version a row, the current one the highest live version.
// Names are per environment (011_environments.sql): every statement works in one, `default` when none is named.
import type pg from 'pg';
import { DEFAULT_ENVIRONMENT, type Profile, type ProfileSpec } from '@enrolld/protocol';
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
    FROM profiles WHERE deleted_at IS NULL AND environment = $1`;

function toProfile(row: ProfileRow): Profile {
  return { ...row.document, name: row.name, version: row.version, builtin: row.builtin, createdAt: row.created_at.toISOString() };
}

/**
 * Serialises writers of one profile name in one environment (the version number is max + 1) and a delete with token
 * creation under it.
 */
export const lockProfileName = (client: pg.ClientBase, name: string, environment: string) =>
  client.query("SELECT pg_advisory_xact_lock(hashtextextended('enrolld_profile:' || $1 || ':' || $2, 0))", [environment, name]);

async function insertVersion(client: pg.ClientBase, spec: ProfileSpec, actor: string, environment: string): Promise<Profile> {
  const { rows } = await client.query<ProfileRow>(
    `INSERT INTO profiles (environment, name, version, kind, document, created_by)
     SELECT $5, $1, coalesce(max(version), 0) + 1, $2, $3, $4 FROM profiles WHERE environment = $5 AND name = $1
     RETURNING name, version, document, builtin, created_at`,
    [spec.name, spec.kind, JSON.stringify(spec), actor, environment],
  );
  // The detail names the environment unless it is `default`, so a one-environment installation's rows read as before.
  await client.query(
    `INSERT INTO audit_events (action, actor, detail)
     VALUES ('profile.stored', $1, jsonb_strip_nulls(jsonb_build_object('name', $2::text, 'version', $3::int, 'environment', NULLIF($4::text, 'default'))))`,
    [actor, spec.name, rows[0]!.version, environment],
  );
  return toProfile(rows[0]!);
}


export function createPgProfileStore(pool: pg.Pool): ProfileStore {
  const live = async (client: pg.ClientBase, name: string, environment: string) =>
    (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM profiles WHERE environment = $1 AND name = $2 AND deleted_at IS NULL', [environment, name])).rows[0]!.n > 0;

  return {
    async list(environment = DEFAULT_ENVIRONMENT) {
      const { rows } = await pool.query<ProfileRow>(`${CURRENT} ORDER BY name, version DESC`, [environment]);
      return rows.map(toProfile);
    },

    async get(name, environment = DEFAULT_ENVIRONMENT) {
      const { rows } = await pool.query<ProfileRow>(`${CURRENT} AND name = $2 ORDER BY name, version DESC`, [environment, name]);
      return rows[0] ? toProfile(rows[0]) : undefined;
    },

    async create(spec, actor, environment = DEFAULT_ENVIRONMENT): Promise<ProfileWriteResult> {
      return inTransaction(pool, 'none', async (client) => {
        await lockProfileName(client, spec.name, environment);
        if (await live(client, spec.name, environment)) return { outcome: 'exists' };
        return { outcome: 'stored', profile: await insertVersion(client, spec, actor, environment) };
      });
    },

    async update(spec, actor, environment = DEFAULT_ENVIRONMENT): Promise<ProfileWriteResult> {
      return inTransaction(pool, 'none', async (client) => {
        await lockProfileName(client, spec.name, environment);
        if (!(await live(client, spec.name, environment))) return { outcome: 'missing' };
        return { outcome: 'stored', profile: await insertVersion(client, spec, actor, environment) };
      });
    },

    async delete(name, actor, environment = DEFAULT_ENVIRONMENT): Promise<ProfileDeleteResult> {
      return inTransaction(pool, 'none', async (client) => {
        await lockProfileName(client, name, environment);
        if (!(await live(client, name, environment))) return { outcome: 'missing' };
        const { rows } = await client.query<{ certificates: number; tokens: number }>(
          `SELECT (SELECT count(*)::int FROM certificates WHERE environment = $2 AND profile = $1 AND revoked_at IS NULL AND not_after > now()) AS certificates,
                  (SELECT count(*)::int FROM bootstrap_tokens WHERE environment = $2 AND profile = $1 AND used_at IS NULL AND expires_at > now()) AS tokens`,
          [name, environment],
        );
        const use = rows[0]!;
        if (use.certificates > 0 || use.tokens > 0) return { outcome: 'in-use', ...use };
        await client.query('UPDATE profiles SET deleted_at = now() WHERE environment = $1 AND name = $2 AND deleted_at IS NULL', [environment, name]);
        await client.query(
          `INSERT INTO audit_events (action, actor, detail)
           VALUES ('profile.deleted', $1, jsonb_strip_nulls(jsonb_build_object('name', $2::text, 'environment', NULLIF($3::text, 'default'))))`,
          [actor, name, environment],
        );
        return { outcome: 'deleted' };
      });
    },
  };
}

/**
 * Profile changes of one environment (the trigger in 011_environments.sql sends the environment and the name) on a
 * dedicated LISTEN connection; other environments' changes are dropped here.
 */
export function createPgProfileListener(options: { connectionString: string; environment?: string; applicationName?: string; reconnectDelayMs?: number }): ProfileFeed {
  const environment = options.environment ?? DEFAULT_ENVIRONMENT;
  const listener = createPgListener({
    connectionString: options.connectionString,
    channels: [PROFILE_CHANNEL],
    applicationName: options.applicationName ?? 'enrolld-profile-listener',
    ...(options.reconnectDelayMs !== undefined ? { reconnectDelayMs: options.reconnectDelayMs } : {}),
  });
  return {
    start: (h) =>
      listener.start({
        onNotification: (_channel, payload) => {
          let change: { environment?: unknown; name?: unknown };
          try {
            change = JSON.parse(payload) as typeof change;
          } catch {
            return; // only our trigger notifies on this channel; a reconnect reloads every profile anyway
          }
          if (change.environment === environment && typeof change.name === 'string') h.onChanged(change.name);
        },
        onConnection: (connected, error) => h.onConnection(connected, error),
      }),
    stop: () => listener.stop(),
  };
}
