// The three bounds of every pool on a real Postgres: statement_timeout cancels a slow statement (503-class error),
// a bulk transaction runs under its own bound and leaves the pool's on the connection, and a migration is unbounded.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createPool, isDatabaseUnavailable } from '@enrolld/db';
import { inTransaction } from '../../db/src/transaction.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

describe('pool timeouts on Postgres', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('statement_timeout cancels a statement past DB_STATEMENT_TIMEOUT, counted as unavailable', async () => {
    const pool = createPool({ connectionString: db.url, max: 1, statementTimeoutMillis: 100, queryTimeoutMillis: 2000 });
    try {
      const error = await pool.query('SELECT pg_sleep(1)').then(() => undefined, (e: unknown) => e);
      expect((error as { code?: string }).code).toBe('57014');
      expect(isDatabaseUnavailable(error)).toBe(true);
      expect((await pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it('a bulk transaction outlives the pool bounds, and its connection returns with the pool\'s statement_timeout', async () => {
    const pool = createPool({ connectionString: db.url, max: 1, statementTimeoutMillis: 100, queryTimeoutMillis: 150 });
    try {
      const slept = await inTransaction(pool, 'none', (c) => c.query('SELECT true AS done FROM pg_sleep(0.4)'), { bulk: true });
      expect(slept.rows[0].done).toBe(true);
      const unbulk = await inTransaction(pool, 'none', (c) => c.query('SELECT pg_sleep(0.4)')).then(() => undefined, (e: unknown) => e);
      expect(isDatabaseUnavailable(unbulk)).toBe(true);
      // max 1: the same connection, or a fresh one after a discard; either way the pool's bound is back.
      expect((await pool.query('SHOW statement_timeout')).rows[0].statement_timeout).toBe('100ms');
    } finally {
      await pool.end();
    }
  });
});
