import type pg from 'pg';
import type { CertificateIntentRecord, IssuedCertificateRecord, TokenGrantRecord } from './records.js';

type BeginResult =
  | { outcome: 'begun'; intent: CertificateIntentRecord }
  | { outcome: 'replay'; certificate: IssuedCertificateRecord }
  | { outcome: 'resume'; intent: CertificateIntentRecord }
  | { outcome: 'in-progress' }
  | { outcome: 'csr-mismatch'; deviceId: string }
  | { outcome: 'rejected'; reason: 'unknown' | 'used' | 'expired' };

interface BeginInput {
  tokenHash: Buffer;
  csrSha256: Buffer;
  retryWindowSeconds: number;
  inFlightSeconds: number;
  buildIntent: (grant: TokenGrantRecord) => CertificateIntentRecord;
}

interface CertificateRow {
  serial: string;
  device_id: string;
  profile: string;
  not_before: Date;
  not_after: Date;
  public_key_sha256: Buffer;
  csr_sha256: Buffer;
  tbs_der: Buffer;
  der: Buffer | null;
  predecessor_serial: string | null;
  age_seconds: number;
}

const INSERT_INTENT = `
  INSERT INTO certificates
    (serial, device_id, profile, token_id, predecessor_serial, public_key_sha256, csr_sha256, tbs_der, not_before, not_after)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`;

export function createPgEnrollmentStore(pool: pg.Pool) {
  return {
    /**
     * Burns the token and records the intent in one transaction. The single conditional UPDATE is the only
     * arbiter between racers: Postgres re-evaluates its WHERE on the row a concurrent winner just wrote,
     * so exactly one request gets the row (READ COMMITTED; RELIABILITY.md §1.3-B). Clock: the database's.
     */
    async begin(input: BeginInput): Promise<BeginResult> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const won = await client.query<{ id: string; device_id: string; profile: string }>(
          `UPDATE bootstrap_tokens SET used_at = now(), csr_sha256 = $2
            WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
            RETURNING id, device_id, profile`,
          [input.tokenHash, input.csrSha256],
        );
        const grant = won.rows[0];
        if (grant) {
          let intent: CertificateIntentRecord;
          try {
            intent = input.buildIntent({ tokenId: grant.id, deviceId: grant.device_id, profile: grant.profile });
          } catch (error) {
            await client.query('ROLLBACK'); // a CSR refused for this identity leaves the token unspent
            throw error;
          }
          await client.query(INSERT_INTENT, [
            intent.serial, intent.deviceId, intent.profile, grant.id, intent.predecessorSerial ?? null,
            intent.publicKeySha256, intent.csrSha256, intent.tbsDer, intent.notBefore, intent.notAfter,
          ]);
          await client.query('COMMIT');
          return { outcome: 'begun', intent };
        }
        await client.query('ROLLBACK');
        return await classifySpentToken(client, input);
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },

    /** Idempotent: the first signature stored for a serial wins, later calls return it. */
    async complete(serial: string, der: Buffer, requestId?: string): Promise<IssuedCertificateRecord> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const updated = await client.query<{ device_id: string; der: Buffer; not_before: Date; not_after: Date }>(
          `UPDATE certificates SET der = $2, issued_at = now() WHERE serial = $1 AND der IS NULL
           RETURNING device_id, der, not_before, not_after`,
          [serial, der],
        );
        let row = updated.rows[0];
        if (row) {
          await client.query(
            `INSERT INTO audit_events (action, actor, device_id, serial, request_id) VALUES ('certificate.issued', 'enrollment', $1, $2, $3)`,
            [row.device_id, serial, requestId ?? null],
          );
        } else {
          const stored = await client.query<{ device_id: string; der: Buffer; not_before: Date; not_after: Date }>(
            'SELECT device_id, der, not_before, not_after FROM certificates WHERE serial = $1 AND der IS NOT NULL',
            [serial],
          );
          row = stored.rows[0];
          if (!row) throw new Error(`certificate ${serial} has no intent row`);
        }
        await client.query('COMMIT');
        return { serial, deviceId: row.device_id, der: row.der, notBefore: row.not_before, notAfter: row.not_after };
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
  };
}

async function classifySpentToken(client: pg.PoolClient, input: BeginInput): Promise<BeginResult> {
  const { rows } = await client.query<{
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
    await client.query<CertificateRow>(
      `SELECT serial, device_id, profile, not_before, not_after, public_key_sha256, csr_sha256, tbs_der, der,
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
      deviceId: cert.device_id,
      profile: cert.profile,
      notBefore: cert.not_before,
      notAfter: cert.not_after,
      publicKeySha256: cert.public_key_sha256,
      csrSha256: cert.csr_sha256,
      tbsDer: cert.tbs_der,
      predecessorSerial: cert.predecessor_serial ?? undefined,
    },
  };
}
