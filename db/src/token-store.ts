import type pg from 'pg';
import type { NewToken, TokenStore } from '@enrolld/core/ports.js';
import { inTransaction } from './transaction.js';

export function createPgTokenStore(pool: pg.Pool): TokenStore {
  return {
    /** One statement per table, all in one transaction: a batch of 100k either lands whole or not at all. */
    async createTokens(tokens: NewToken[], actor: string): Promise<void> {
      if (tokens.length === 0) return;
      await inTransaction(pool, 'none', async (client) => {
        await client.query(
          `INSERT INTO devices (id, profile) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (id) DO NOTHING`,
          [tokens.map((t) => t.deviceId), tokens.map((t) => t.profile)],
        );
        await client.query(
          `INSERT INTO bootstrap_tokens (token_hash, device_id, profile, expires_at, created_by)
           SELECT h, d, p, e, $5 FROM unnest($1::bytea[], $2::text[], $3::text[], $4::timestamptz[]) AS t(h, d, p, e)`,
          [tokens.map((t) => t.tokenHash), tokens.map((t) => t.deviceId), tokens.map((t) => t.profile), tokens.map((t) => t.expiresAt), actor],
        );
        await client.query(
          `INSERT INTO audit_events (action, actor, device_id, detail)
           SELECT 'token.created', $1, d, jsonb_build_object('expiresAt', e) FROM unnest($2::text[], $3::timestamptz[]) AS t(d, e)`,
          [actor, tokens.map((t) => t.deviceId), tokens.map((t) => t.expiresAt)],
        );
      }, { bulk: true });
    },
  };
}
