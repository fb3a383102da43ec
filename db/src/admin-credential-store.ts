import type pg from 'pg';
import type { AdminCredentialStore } from '@enrolld/core/ports.js';

/** The AdminCredentialStore port, plus what `enrolld up` needs to register the first credential. */
export function createPgAdminCredentialStore(pool: pg.Pool): AdminCredentialStore & { ensure(name: string, tokenHash: Buffer): Promise<boolean>; hasAny(): Promise<boolean> } {
  return {
    async findByHash(tokenHash: Buffer): Promise<{ name: string } | undefined> {
      const { rows } = await pool.query<{ name: string }>('SELECT name FROM admin_credentials WHERE token_hash = $1', [tokenHash]);
      return rows[0];
    },
    /** Registers a credential under a name unless that name exists; returns whether it was added. */
    async ensure(name: string, tokenHash: Buffer): Promise<boolean> {
      const { rowCount } = await pool.query(
        'INSERT INTO admin_credentials (name, token_hash) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [name, tokenHash],
      );
      return rowCount === 1;
    },
    async hasAny(): Promise<boolean> {
      const { rowCount } = await pool.query('SELECT 1 FROM admin_credentials LIMIT 1');
      return (rowCount ?? 0) > 0;
    },
  };
}
