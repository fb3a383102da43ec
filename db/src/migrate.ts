import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { withQueryTimeout } from './pool.js';
import { MIGRATION_LOCK_KEY, transactionOn } from './transaction.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url));

/** A migration may rewrite a large table, and a migrator may wait for another's lock: neither is bound by the request timeouts. */
const MIGRATION_QUERY_TIMEOUT_MS = 60 * 60_000;

/** Applies every `migrations/NNN_name.sql` not yet applied, each in its own transaction, under an advisory lock. */
export async function migrate(pool: pg.Pool): Promise<string[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f)).sort();
  const pooled = await pool.connect();
  const client = withQueryTimeout(pooled, MIGRATION_QUERY_TIMEOUT_MS);
  const applied: string[] = [];
  try {
    // This session only: the connection is discarded afterwards, so the pool's statement_timeout stays on the others.
    await client.query('SET statement_timeout = 0');
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set((await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((r) => r.name));
    for (const file of files) {
      if (done.has(file)) continue;
      const sql = await readFile(MIGRATIONS_DIR + file, 'utf8');
      try {
        await transactionOn(client, 'none', async (tx) => {
          await tx.query(sql);
          await tx.query('INSERT INTO schema_migrations (name) VALUES ($1)', [file]);
        });
      } catch (error) {
        throw new Error(`migration ${file} failed: ${(error as Error).message}`, { cause: error });
      }
      applied.push(file);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    pooled.release(true);
  }
  return applied;
}
