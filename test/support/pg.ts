import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPool, migrate } from '@enrolld/db';

/** The server the integration tests run on: the machine's Postgres unless TEST_DATABASE_URL says otherwise. */
export const TEST_PG_ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

/** A fresh, migrated database of its own for one test file; `drop()` removes it. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `enrolld_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_PG_ADMIN_URL);
  url.pathname = `/${name}`;
  const pool = createPool({ connectionString: url.toString(), max: 50 });
  await migrate(pool);
  return {
    url: url.toString(),
    name,
    pool,
    async drop() {
      await pool.end();
      const client = new pg.Client({ connectionString: TEST_PG_ADMIN_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * `count` certificate rows over devices of 10 (ids `<prefix>-<n>`), as enrollment records them, valid for a day; for
 * CRL tests, which need only their serials. Serials start with `lead` and a hash of the prefix, so runs never collide.
 */
export async function insertCertificateRows(pool: pg.Pool, prefix: string, count: number, lead = '7e'): Promise<string[]> {
  const { rows } = await pool.query<{ serial: string }>(
    `WITH d AS (INSERT INTO devices (id) SELECT $1 || '-' || i FROM generate_series(0, $2::int / 10 - 1) i RETURNING id)
     INSERT INTO certificates (serial, device_id, public_key_sha256, csr_sha256, tbs_der, not_before, not_after)
     SELECT $3 || substr(md5($1), 1, 4) || lpad(to_hex(i), 10, '0'), $1 || '-' || (i / 10), sha256(int8send(i)), sha256(int8send(i)), '\\x30'::bytea,
            now() - interval '1 minute', now() + interval '1 day'
     FROM generate_series(0, $2::int - 1) i
     RETURNING serial`,
    [prefix, count, lead],
  );
  return rows.map((r) => r.serial);
}
