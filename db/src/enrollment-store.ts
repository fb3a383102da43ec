import type pg from 'pg';
import type { IdentityKind, ProfileSpec } from '@enrolld/protocol';
import type { BeginEnrollment, BeginEnrollmentResult, EnrollmentStore, IssuedCertificate } from '@enrolld/core/ports.js';
import type { ProfileTerms } from '@enrolld/core/profiles/ports.js';

interface CertificateRow {
  serial: string;
  identity_kind: IdentityKind;
  device_id: string;
  environment: string;
  profile: string;
  profile_version: number;
  device_group: string | null;
  not_before: Date;
  not_after: Date;
  public_key_sha256: Buffer;
  csr_sha256: Buffer;
  tbs_der: Buffer;
  der: Buffer | null;
  predecessor_serial: string | null;
  age_seconds: number;
  renewal_window_fraction: number | null;
}

// Burns the token and records the intent in ONE statement (one round trip, one commit). The conditional
// UPDATE is the only arbiter between racers: Postgres re-evaluates its WHERE on the row a concurrent winner
// just wrote, so exactly one request gets the row (READ COMMITTED, PostgreSQL "Transaction Isolation" §13.2.1).
// The device takes the token's group and batch with it (those of its last enrollment).
const SPEND_TOKEN_AND_RECORD_INTENT = `
  WITH spent AS (
    UPDATE bootstrap_tokens SET used_at = now(), csr_sha256 = $2
     WHERE id = $1 AND used_at IS NULL AND expires_at > now()
    RETURNING id, batch_id),
  grouped AS (
    UPDATE devices SET device_group = $13, token_batch = spent.batch_id FROM spent WHERE devices.id = $4)
  INSERT INTO certificates
    (serial, device_id, profile, token_id, predecessor_serial, public_key_sha256, csr_sha256, tbs_der, not_before, not_after,
     identity_kind, profile_version, device_group, environment)
  SELECT $3, $4, $5, spent.id, $6, $7, $2, $8, $9, $10, $11, $12, $13, $14 FROM spent
  RETURNING serial`;

/** A live token with its identity's kind and environment and the current version of its profile there (none when deleted). */
const LIVE_TOKEN = `
  SELECT t.id, t.device_id, t.profile, t.device_group, d.kind, d.environment, p.version AS profile_version, p.document AS profile_document
    FROM bootstrap_tokens t
    JOIN devices d ON d.id = t.device_id
    LEFT JOIN LATERAL (SELECT version, document FROM profiles
                        WHERE environment = d.environment AND name = t.profile AND deleted_at IS NULL ORDER BY version DESC LIMIT 1) p ON true
   WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > now()`;

/** The terms of a profile row read with its document. */
export function profileTermsOf(name: string, version: number | null, document: ProfileSpec | null): ProfileTerms | undefined {
  if (version === null || document === null) return undefined;
  const { kind, lifetimeSeconds, keyTypes, renewalWindowFraction } = document;
  return { name, version, kind, lifetimeSeconds, keyTypes, renewalWindowFraction };
}

/**
 * The renewalWindowFraction of the profile version the certificate row `alias` was issued under, in its environment (a
 * later version does not move it; a version row stays when its profile is deleted); NULL when that version sets none.
 */
export const windowFractionOf = (alias: string): string =>
  `(SELECT (pv.document->>'renewalWindowFraction')::float8 FROM profiles pv
     WHERE pv.environment = ${alias}.environment AND pv.name = ${alias}.profile AND pv.version = ${alias}.profile_version)`;

/** An issued certificate as the stores read it back (columns named as in certificates). */
export interface IssuedRow {
  device_id: string;
  environment: string;
  der: Buffer;
  not_before: Date;
  not_after: Date;
  renewal_window_fraction: number | null;
}

export function issuedCertificateOf(serial: string, row: IssuedRow): IssuedCertificate {
  return {
    serial,
    deviceId: row.device_id,
    environment: row.environment,
    der: row.der,
    notBefore: row.not_before,
    notAfter: row.not_after,
    renewalWindowFraction: row.renewal_window_fraction ?? undefined,
  };
}

/** The columns of IssuedRow from the certificate row `alias`. */
export const issuedColumnsOf = (alias: string): string =>
  `${alias}.device_id, ${alias}.environment, ${alias}.der, ${alias}.not_before, ${alias}.not_after, ${windowFractionOf(alias)} AS renewal_window_fraction`;

// Stores the signature and its audit row in one statement; a second call for the same serial changes nothing.
const STORE_SIGNED = `
  WITH done AS (
    UPDATE certificates SET der = $2, issued_at = now() WHERE serial = $1 AND der IS NULL
    RETURNING device_id, environment, der, not_before, not_after, profile, profile_version),
  audit AS (
    INSERT INTO audit_events (action, actor, device_id, serial, request_id)
    SELECT 'certificate.issued', $4, device_id, $1, $3 FROM done)
  SELECT ${issuedColumnsOf('done')} FROM done`;

export function createPgEnrollmentStore(pool: pg.Pool): EnrollmentStore {
  return {
    async begin(input: BeginEnrollment): Promise<BeginEnrollmentResult> {
      // Clock: the database's, for every expiry decision (TOK-03).
      const live = await pool.query<{
        id: string; device_id: string; profile: string; device_group: string | null; kind: IdentityKind; environment: string;
        profile_version: number | null; profile_document: ProfileSpec | null;
      }>(LIVE_TOKEN, [input.tokenHash]);
      const token = live.rows[0];
      if (token) {
        // May throw (e.g. the CSR names another identity): nothing has been written, the token stays unspent.
        const intent = await input.buildIntent({
          tokenId: token.id,
          kind: token.kind,
          deviceId: token.device_id,
          environment: token.environment,
          profile: token.profile,
          profileTerms: profileTermsOf(token.profile, token.profile_version, token.profile_document),
          group: token.device_group ?? undefined,
        });
        const recorded = await pool.query(SPEND_TOKEN_AND_RECORD_INTENT, [
          token.id, input.csrSha256, intent.serial, intent.deviceId, intent.profile, intent.predecessorSerial ?? null,
          intent.publicKeySha256, intent.tbsDer, intent.notBefore, intent.notAfter, intent.kind, intent.profileVersion, intent.group ?? null,
          intent.environment,
        ]);
        if (recorded.rowCount === 1) return { outcome: 'begun', intent };
        // Another request spent it between the SELECT and the UPDATE: answer as for any spent token.
      }
      return classifySpentToken(pool, input);
    },

    /** Idempotent: the first signature stored for a serial wins, later calls return it. */
    async complete(serial: string, der: Buffer, requestId?: string, actor = 'enrollment'): Promise<IssuedCertificate> {
      let row = (await pool.query<IssuedRow>(STORE_SIGNED, [serial, der, requestId ?? null, actor])).rows[0];
      if (!row) {
        row = (await pool.query<IssuedRow>(`SELECT ${issuedColumnsOf('c')} FROM certificates c WHERE c.serial = $1 AND c.der IS NOT NULL`, [serial])).rows[0];
        if (!row) throw new Error(`certificate ${serial} has no intent row`);
      }
      return issuedCertificateOf(serial, row);
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
      `SELECT c.serial, c.identity_kind, c.profile, c.profile_version, c.device_group, c.public_key_sha256, c.csr_sha256, c.tbs_der,
              c.predecessor_serial, extract(epoch FROM now() - c.created_at)::float8 AS age_seconds, ${issuedColumnsOf('c')}
         FROM certificates c WHERE c.token_id = $1`,
      [token.id],
    )
  ).rows[0];
  if (!cert) return { outcome: 'rejected', reason: 'used' };
  if (cert.der) return { outcome: 'replay', certificate: issuedCertificateOf(cert.serial, { ...cert, der: cert.der }) };
  if (cert.age_seconds < input.inFlightSeconds) return { outcome: 'in-progress' };
  return {
    outcome: 'resume',
    intent: {
      serial: cert.serial,
      kind: cert.identity_kind,
      deviceId: cert.device_id,
      environment: cert.environment,
      profile: cert.profile,
      profileVersion: cert.profile_version,
      group: cert.device_group ?? undefined,
      notBefore: cert.not_before,
      notAfter: cert.not_after,
      publicKeySha256: cert.public_key_sha256,
      csrSha256: cert.csr_sha256,
      tbsDer: cert.tbs_der,
      predecessorSerial: cert.predecessor_serial ?? undefined,
    },
  };
}
