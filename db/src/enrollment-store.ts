import type pg from 'pg';
import type { IdentityKind, ProfileSpec } from '@enrolld/protocol';
import type { BeginEnrollment, BeginEnrollmentResult, EnrollmentStore, IssuedCertificate } from '@enrolld/core/ports.js';
import type { ProfileTerms } from '@enrolld/core/profiles/ports.js';

interface CertificateRow {
  serial: string;
  identity_kind: IdentityKind;
  device_id: string;
  profile: string;
  profile_version: number;
  not_before: Date;
  not_after: Date;
  public_key_sha256: Buffer;
  csr_sha256: Buffer;
  tbs_der: Buffer;
  der: Buffer | null;
  predecessor_serial: string | null;
  age_seconds: number;
}

// Burns the token and records the intent in ONE statement (one round trip, one commit). The conditional
// UPDATE is the only arbiter between racers: Postgres re-evaluates its WHERE on the row a concurrent winner
// just wrote, so exactly one request gets the row (READ COMMITTED, PostgreSQL "Transaction Isolation" §13.2.1).
const SPEND_TOKEN_AND_RECORD_INTENT = `
  WITH spent AS (
    UPDATE bootstrap_tokens SET used_at = now(), csr_sha256 = $2
     WHERE id = $1 AND used_at IS NULL AND expires_at > now()
    RETURNING id)
  INSERT INTO certificates
    (serial, device_id, profile, token_id, predecessor_serial, public_key_sha256, csr_sha256, tbs_der, not_before, not_after,
     identity_kind, profile_version)
  SELECT $3, $4, $5, spent.id, $6, $7, $2, $8, $9, $10, $11, $12 FROM spent
  RETURNING serial`;

/** A live token with its identity's kind and the current version of its profile (none when it was deleted). */
const LIVE_TOKEN = `
  SELECT t.id, t.device_id, t.profile, d.kind, p.version AS profile_version, p.document AS profile_document
    FROM bootstrap_tokens t
    JOIN devices d ON d.id = t.device_id
    LEFT JOIN LATERAL (SELECT version, document FROM profiles
                        WHERE name = t.profile AND deleted_at IS NULL ORDER BY version DESC LIMIT 1) p ON true
   WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > now()`;

/** The terms of a profile row read with its document. */
export function profileTermsOf(name: string, version: number | null, document: ProfileSpec | null): ProfileTerms | undefined {
  if (version === null || document === null) return undefined;
  return { name, version, kind: document.kind, lifetimeSeconds: document.lifetimeSeconds, keyTypes: document.keyTypes };
}

// Stores the signature and its audit row in one statement; a second call for the same serial changes nothing.
const STORE_SIGNED = `
  WITH done AS (
    UPDATE certificates SET der = $2, issued_at = now() WHERE serial = $1 AND der IS NULL
    RETURNING device_id, der, not_before, not_after),
  audit AS (
    INSERT INTO audit_events (action, actor, device_id, serial, request_id)
    SELECT 'certificate.issued', $4, device_id, $1, $3 FROM done)
  SELECT device_id, der, not_before, not_after FROM done`;

export function createPgEnrollmentStore(pool: pg.Pool): EnrollmentStore {
  return {
    async begin(input: BeginEnrollment): Promise<BeginEnrollmentResult> {
      // Clock: the database's, for every expiry decision (TOK-03).
      const live = await pool.query<{
        id: string; device_id: string; profile: string; kind: IdentityKind; profile_version: number | null; profile_document: ProfileSpec | null;
      }>(LIVE_TOKEN, [input.tokenHash]);
      const token = live.rows[0];
      if (token) {
        // May throw (e.g. the CSR names another identity): nothing has been written, the token stays unspent.
        const intent = input.buildIntent({
          tokenId: token.id,
          kind: token.kind,
          deviceId: token.device_id,
          profile: token.profile,
          profileTerms: profileTermsOf(token.profile, token.profile_version, token.profile_document),
        });
        const recorded = await pool.query(SPEND_TOKEN_AND_RECORD_INTENT, [
          token.id, input.csrSha256, intent.serial, intent.deviceId, intent.profile, intent.predecessorSerial ?? null,
          intent.publicKeySha256, intent.tbsDer, intent.notBefore, intent.notAfter, intent.kind, intent.profileVersion,
        ]);
        if (recorded.rowCount === 1) return { outcome: 'begun', intent };
        // Another request spent it between the SELECT and the UPDATE: answer as for any spent token.
      }
      return classifySpentToken(pool, input);
    },

    /** Idempotent: the first signature stored for a serial wins, later calls return it. */
    async complete(serial: string, der: Buffer, requestId?: string, actor = 'enrollment'): Promise<IssuedCertificate> {
      type Row = { device_id: string; der: Buffer; not_before: Date; not_after: Date };
      let row = (await pool.query<Row>(STORE_SIGNED, [serial, der, requestId ?? null, actor])).rows[0];
      if (!row) {
        row = (await pool.query<Row>('SELECT device_id, der, not_before, not_after FROM certificates WHERE serial = $1 AND der IS NOT NULL', [serial])).rows[0];
        if (!row) throw new Error(`certificate ${serial} has no intent row`);
      }
      return { serial, deviceId: row.device_id, der: row.der, notBefore: row.not_before, notAfter: row.not_after };
    },
  };
}

async function classifySpentToken(pool: pg.Pool, input: BeginEnrollment): Promise<BeginEnrollmentResult> {
  const { rows } = await pool.query<{
    used_at: Date | null;
    expired: boolean;
    within_retry: boolean;
    csr_sha256: Buffer | null;
    device_id: string;
    id: string;
  }>(
    `SELECT id, device_id, used_at, csr_sha256, expires_at <= now() AS expired,
            (used_at IS NOT NULL AND used_at > now() - make_interval(secs => $2)) AS within_retry
       FROM bootstrap_tokens WHERE token_hash = $1`,
    [input.tokenHash, input.retryWindowSeconds],
  );
  const token = rows[0];
  if (!token) return { outcome: 'rejected', reason: 'unknown' };
  if (!token.used_at) return { outcome: 'rejected', reason: 'expired' };
  if (!token.within_retry) return { outcome: 'rejected', reason: 'used' };
  if (!token.csr_sha256 || !token.csr_sha256.equals(input.csrSha256)) return { outcome: 'csr-mismatch', deviceId: token.device_id };

  const cert = (
    await pool.query<CertificateRow>(
      `SELECT serial, identity_kind, device_id, profile, profile_version, not_before, not_after, public_key_sha256, csr_sha256, tbs_der, der,
              predecessor_serial, extract(epoch FROM now() - created_at)::float8 AS age_seconds
         FROM certificates WHERE token_id = $1`,
      [token.id],
    )
  ).rows[0];
  if (!cert) return { outcome: 'rejected', reason: 'used' };
  if (cert.der) {
    return {
      outcome: 'replay',
      certificate: { serial: cert.serial, deviceId: cert.device_id, der: cert.der, notBefore: cert.not_before, notAfter: cert.not_after },
    };
  }
  if (cert.age_seconds < input.inFlightSeconds) return { outcome: 'in-progress' };
  return {
    outcome: 'resume',
    intent: {
      serial: cert.serial,
      kind: cert.identity_kind,
      deviceId: cert.device_id,
      profile: cert.profile,
      profileVersion: cert.profile_version,
      notBefore: cert.not_before,
      notAfter: cert.not_after,
      publicKeySha256: cert.public_key_sha256,
      csrSha256: cert.csr_sha256,
      tbsDer: cert.tbs_der,
      predecessorSerial: cert.predecessor_serial ?? undefined,
    },
  };
}
