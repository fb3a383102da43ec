import type pg from 'pg';
import type { CreateTokensResult, NewToken, TokenStore } from '@enrolld/core/ports.js';
import { inTransaction } from './transaction.js';
import { lockProfileName } from './profile-store.js';

class KindMismatch extends Error {
  constructor(readonly ids: string[]) {
    super('identities of another kind');
  }
}

export function createPgTokenStore(pool: pg.Pool): TokenStore {
  return {
    /** One statement per table, all in one transaction: a batch of 100k either lands whole or not at all. */
    async createTokens(tokens: NewToken[], actor: string): Promise<CreateTokensResult> {
      if (tokens.length === 0) return { outcome: 'created' };
      const { kind, profile } = tokens[0]!;
      return inTransaction<CreateTokensResult>(pool, 'none', async (client) => {
        // A profile delete takes the same lock and counts unspent tokens: it never misses these.
        await lockProfileName(client, profile);
        const live = await client.query('SELECT 1 FROM profiles WHERE name = $1 AND kind = $2 AND deleted_at IS NULL LIMIT 1', [profile, kind]);
        if (live.rowCount === 0) return { outcome: 'unknown-profile' };
        await client.query(
          `INSERT INTO devices (id, profile, kind) SELECT d, p, $3 FROM unnest($1::text[], $2::text[]) AS t(d, p) ON CONFLICT (id) DO NOTHING`,
          [tokens.map((t) => t.deviceId), tokens.map((t) => t.profile), kind],
        );
        const mismatched = await client.query<{ id: string }>('SELECT id FROM devices WHERE id = ANY($1::text[]) AND kind <> $2 ORDER BY id', [
          tokens.map((t) => t.deviceId), kind,
        ]);
        // Thrown to roll the batch back: nothing of it stays.
        if (mismatched.rows.length > 0) throw new KindMismatch(mismatched.rows.map((r) => r.id));
        await client.query(
          `INSERT INTO bootstrap_tokens (token_hash, device_id, profile, expires_at, created_by)
           SELECT h, d, p, e, $5 FROM unnest($1::bytea[], $2::text[], $3::text[], $4::timestamptz[]) AS t(h, d, p, e)`,
          [tokens.map((t) => t.tokenHash), tokens.map((t) => t.deviceId), tokens.map((t) => t.profile), tokens.map((t) => t.expiresAt), actor],
        );
        await client.query(
          `INSERT INTO audit_events (action, actor, device_id, detail)
           SELECT 'token.created', $1, d, jsonb_build_object('expiresAt', e, 'profile', $4::text) FROM unnest($2::text[], $3::timestamptz[]) AS t(d, e)`,
          [actor, tokens.map((t) => t.deviceId), tokens.map((t) => t.expiresAt), profile],
        );
        return { outcome: 'created' };
      }).catch((error: unknown) => {
        if (error instanceof KindMismatch) return { outcome: 'kind-mismatch', ids: error.ids };
        throw error;
      });
    },
  };
}
