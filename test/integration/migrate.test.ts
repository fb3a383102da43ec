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

  it('004 rewrites serials to the canonical form, with the lineage and hints that name them, and refuses any other form', async () => {
    // The state before 004: its constraint absent, rows in other spellings (upper case, a lost leading zero, a
    // high-bit serial without its 00 octet), one naming another as its predecessor and one with a rotation hint.
    await db.pool.query('ALTER TABLE certificates DROP CONSTRAINT certificates_serial_canonical');
    await db.pool.query(`DELETE FROM schema_migrations WHERE name = '004_canonical_serials.sql'`);
    await db.pool.query(`INSERT INTO devices (id) VALUES ('legacy-serials')`);
    const insert = (serial: string, predecessor: string | null) =>
      db.pool.query(
        `INSERT INTO certificates (serial, device_id, predecessor_serial, public_key_sha256, csr_sha256, tbs_der, der, not_before, not_after)
         VALUES ($1, 'legacy-serials', $2, '\\x00', '\\x00', '\\x00', '\\x00', now(), now() + interval '1 day')`,
        [serial, predecessor],
      );
    await insert('1abc', null);
    await insert('8f01', '1abc');
    await insert('0001ff', '8f01');
    await db.pool.query(`INSERT INTO rotation_hints (serial, device_id) VALUES ('0001ff', 'legacy-serials')`);

    expect(await migrate(db.pool)).toEqual(['004_canonical_serials.sql']);

    const { rows } = await db.pool.query<{ serial: string; predecessor_serial: string | null }>(
      `SELECT serial, predecessor_serial FROM certificates WHERE device_id = 'legacy-serials' ORDER BY created_at, serial`,
    );
    expect(rows).toEqual(
      expect.arrayContaining([
        { serial: '1abc', predecessor_serial: null },
        { serial: '008f01', predecessor_serial: '1abc' },
        { serial: '01ff', predecessor_serial: '008f01' },
      ]),
    );
    const hints = await db.pool.query<{ serial: string }>(`SELECT serial FROM rotation_hints WHERE device_id = 'legacy-serials'`);
    expect(hints.rows).toEqual([{ serial: '01ff' }]);
    await expect(insert('007f', null)).rejects.toThrow(/certificates_serial_canonical/);
    await expect(insert('ABCD', null)).rejects.toThrow(/check constraint/);
  });
});
