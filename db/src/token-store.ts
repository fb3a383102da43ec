import type pg from 'pg';
import { DEFAULT_ENVIRONMENT, REVOCATION_REASONS, type DeviceToken, type IdentityKind } from '@enrolld/protocol';
import type { CertificateHistory, CreateTokensResult, NewToken, TokenStore } from '@enrolld/core/ports.js';
import { inTransaction } from './transaction.js';
import { lockProfileName } from './profile-store.js';
import { lockLiveEnvironment } from './environment-store.js';

/** Thrown to roll a batch back: identities recorded with another kind or in another environment. */
class IdentityMismatch extends Error {
  constructor(readonly outcome: 'kind-mismatch' | 'environment-mismatch', readonly ids: string[]) {
    super(`identities of another ${outcome === 'kind-mismatch' ? 'kind' : 'environment'}`);
  }
}

/** As stored in certificates.revocation_reason (the RFC 5280 §5.3.1 code). */
const KEY_COMPROMISE = REVOCATION_REASONS.keyCompromise;

export function createPgTokenStore(pool: pg.Pool): TokenStore {
  return {
    /** One statement per table, all in one transaction: a batch of 100k either lands whole or not at all. */
    async createTokens(tokens: NewToken[], actor: string): Promise<CreateTokensResult> {
      if (tokens.length === 0) return { outcome: 'created' };
      const { kind, profile } = tokens[0]!;
      const environment = tokens[0]!.environment ?? DEFAULT_ENVIRONMENT;
      const issues = tokens.map((t) => t.issuedAs ?? 'new');
      const ids = tokens.map((t) => t.deviceId);
      return inTransaction<CreateTokensResult>(pool, 'none', async (client) => {
        // An environment delete takes this lock exclusively and counts unspent tokens: it never misses these.
        if (!(await lockLiveEnvironment(client, environment))) return { outcome: 'unknown-environment' };
        // A profile delete takes the same lock and counts unspent tokens: it never misses these.
        await lockProfileName(client, profile, environment);
        const live = await client.query('SELECT 1 FROM profiles WHERE environment = $1 AND name = $2 AND kind = $3 AND deleted_at IS NULL LIMIT 1', [
          environment, profile, kind,
        ]);
        if (live.rowCount === 0) return { outcome: 'unknown-profile' };
        await client.query(
          `INSERT INTO devices (id, profile, kind, environment) SELECT d, p, $3, $4 FROM unnest($1::text[], $2::text[]) AS t(d, p) ON CONFLICT (id) DO NOTHING`,
          [ids, tokens.map((t) => t.profile), kind, environment],
        );
        const mismatched = await client.query<{ id: string; kind: IdentityKind; environment: string }>(
          'SELECT id, kind, environment FROM devices WHERE id = ANY($1::text[]) AND (kind <> $2 OR environment <> $3) ORDER BY id',
          [ids, kind, environment],
        );
        // Thrown to roll the batch back: nothing of it stays.
        const otherKind = mismatched.rows.filter((r) => r.kind !== kind).map((r) => r.id);
        if (otherKind.length > 0) throw new IdentityMismatch('kind-mismatch', otherKind);
        if (mismatched.rows.length > 0) throw new IdentityMismatch('environment-mismatch', mismatched.rows.map((r) => r.id));
        await client.query(
          `INSERT INTO bootstrap_tokens (token_hash, device_id, profile, expires_at, created_by, issued_as, device_group, environment, batch_id)
           SELECT h, d, p, e, $5, i, g, $8, b
             FROM unnest($1::bytea[], $2::text[], $3::text[], $4::timestamptz[], $6::text[], $7::text[], $9::uuid[]) AS t(h, d, p, e, i, g, b)`,
          [tokens.map((t) => t.tokenHash), ids, tokens.map((t) => t.profile), tokens.map((t) => t.expiresAt), actor, issues, tokens.map((t) => t.group ?? null), environment,
            tokens.map((t) => t.batchId ?? null)],
        );
        await client.query(
          `INSERT INTO audit_events (action, actor, device_id, detail)
           SELECT 'token.created', $1, d,
                  jsonb_strip_nulls(jsonb_build_object('expiresAt', e, 'issuedAs', i, 'profile', $5::text, 'group', g, 'environment', NULLIF($7::text, 'default'), 'batch', b))
             FROM unnest($2::text[], $3::timestamptz[], $4::text[], $6::text[], $8::uuid[]) AS t(d, e, i, g, b)`,
          [actor, ids, tokens.map((t) => t.expiresAt), issues, profile, tokens.map((t) => t.group ?? null), environment, tokens.map((t) => t.batchId ?? null)],
        );
        return { outcome: 'created' };
      }, { bulk: true }).catch((error: unknown) => {
        if (error instanceof IdentityMismatch) return { outcome: error.outcome, ids: error.ids };
        throw error;
      });
    },

    async identities(ids: string[]): Promise<Map<string, { kind: IdentityKind; environment: string }>> {
      const { rows } = await pool.query<{ id: string; kind: IdentityKind; environment: string }>('SELECT id, kind, environment FROM devices WHERE id = ANY($1::text[])', [ids]);
      return new Map(rows.map((r) => [r.id, { kind: r.kind, environment: r.environment }]));
    },

    async certificateHistory(deviceIds: string[]): Promise<Map<string, CertificateHistory>> {
      // Up to a whole batch of ids (100k): a bulk bound.
      const { rows } = await inTransaction(
        pool,
        'none',
        (client) =>
          client.query<{ device_id: string; live: boolean; compromised: boolean }>(
            `SELECT device_id,
                    bool_or(der IS NOT NULL AND revoked_at IS NULL AND not_after > now()) AS live,
                    COALESCE(max(revoked_at) FILTER (WHERE revocation_reason = $2) >= max(created_at), false) AS compromised
               FROM certificates WHERE device_id = ANY($1::text[]) GROUP BY device_id`,
            [deviceIds, KEY_COMPROMISE],
          ),
        { bulk: true },
      );
      return new Map(rows.map((r) => [r.device_id, { live: r.live, compromised: r.compromised }]));
    },

    async tokensOf(deviceId: string): Promise<DeviceToken[] | undefined> {
      const device = await pool.query('SELECT 1 FROM devices WHERE id = $1', [deviceId]);
      if (device.rowCount === 0) return undefined;
      type Row = {
        created_at: Date; created_by: string; expires_at: Date; issued_as: DeviceToken['issuedAs']; used_at: Date | null;
        withdrawn_at: Date | null; expired: boolean; serial: string | null; request_id: string | null;
      };
      const { rows } = await pool.query<Row>(
        `SELECT t.created_at, t.created_by, t.expires_at, t.issued_as, t.used_at, t.withdrawn_at, t.expires_at <= now() AS expired,
                c.serial, a.request_id
           FROM bootstrap_tokens t
           LEFT JOIN certificates c ON c.token_id = t.id
           LEFT JOIN LATERAL (SELECT request_id FROM audit_events
                               WHERE device_id = $1 AND action = 'certificate.issued' AND serial = c.serial ORDER BY id LIMIT 1) a ON true
          WHERE t.device_id = $1 ORDER BY t.id DESC`,
        [deviceId],
      );
      return rows.map((r) => ({
        createdAt: r.created_at.toISOString(),
        createdBy: r.created_by,
        expiresAt: r.expires_at.toISOString(),
        issuedAs: r.issued_as,
        state: r.used_at ? 'used' : r.withdrawn_at ? 'withdrawn' : r.expired ? 'expired' : 'unused',
        usedAt: r.used_at?.toISOString() ?? null,
        serial: r.serial,
        requestId: r.request_id,
      }));
    },
  };
}
