import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { migrate } from '@enrolld/db';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';

describe('migrations', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('are applied once and are a no-op the second time', async () => {
    expect(await migrate(db.pool)).toEqual([]);
    const { rows } = await db.pool.query('SELECT name FROM schema_migrations ORDER BY name');
    expect(rows.map((r) => r.name)).toContain('001_init.sql');
  });

  it('enforce the device id rule in the database too', async () => {
    await expect(db.pool.query(`INSERT INTO devices (id) VALUES ('Bad/Id')`)).rejects.toThrow(/check constraint/);
  });
});
