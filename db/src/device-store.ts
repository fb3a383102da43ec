import type pg from 'pg';
import { REVOCATION_REASON_NAMES, REVOCATION_REASONS } from '@enrolld/protocol';
import type { CertificateStatus, DeviceSummary } from '@enrolld/protocol';
import type { DeviceQuery, DeviceStore } from '@enrolld/core/ports.js';

const reasonName = (code: number | null): string | null =>
  code === null ? null : (REVOCATION_REASON_NAMES.find((n) => REVOCATION_REASONS[n] === code) ?? String(code));

// A certificate's state, derived in SQL so list filters and detail views agree.
const CERT_STATUS = `CASE WHEN c.revoked_at IS NOT NULL THEN 'revoked'
                          WHEN c.der IS NULL THEN 'pending'
                          WHEN c.not_after < now() THEN 'expired'
                          ELSE 'active' END`;

// A device's state is its newest issued certificate's; a device with none yet is pending. The fleet search reads
// devices through the same statement (fleet-store.ts). Admins are identities of the same table but not of the fleet:
// `enrolld admin list` shows them.
export const DEVICE_SELECT = `
  SELECT d.id, d.environment, d.profile, d.device_group, d.token_batch, d.created_at, cur.serial AS current_serial, cur.not_after,
         COALESCE(cur.status, 'pending') AS status
    FROM (SELECT * FROM devices WHERE kind <> 'admin') d
    LEFT JOIN LATERAL (
      SELECT c.serial, c.not_after, ${CERT_STATUS} AS status
        FROM certificates c WHERE c.device_id = d.id AND c.der IS NOT NULL
       ORDER BY c.issued_at DESC LIMIT 1
    ) cur ON true`;

export interface DeviceRow {
  id: string;
  environment: string;
  profile: string;
  device_group: string | null;
  token_batch: string | null;
  created_at: Date;
  current_serial: string | null;
  not_after: Date | null;
  status: CertificateStatus;
}

export const toSummary = (r: DeviceRow): DeviceSummary => ({
  id: r.id,
  environment: r.environment,
  profile: r.profile,
  group: r.device_group,
  tokenBatch: r.token_batch,
  createdAt: r.created_at.toISOString(),
  status: r.status,
  currentSerial: r.current_serial,
  notAfter: r.not_after?.toISOString() ?? null,
});

export function createPgDeviceStore(pool: pg.Pool): DeviceStore {
  return {
    async list(query: DeviceQuery) {
      const { rows } = await pool.query<DeviceRow>(
        `SELECT * FROM (${DEVICE_SELECT}) s
          WHERE ($1::text IS NULL OR s.id > $1) AND ($2::text IS NULL OR s.status = $2)
            AND ($3::text IS NULL OR starts_with(s.id, $3)) AND ($5::text IS NULL OR s.environment = $5)
          ORDER BY s.id LIMIT $4`,
        [query.after ?? null, query.status ?? null, query.prefix ?? null, query.limit, query.environment ?? null],
      );
      return rows.map(toSummary);
    },

    async get(deviceId: string) {
      const device = (await pool.query<DeviceRow>(`${DEVICE_SELECT} WHERE d.id = $1`, [deviceId])).rows[0];
      if (!device) return undefined;
      const certs = await pool.query<{
        serial: string;
        status: CertificateStatus;
        not_before: Date;
        not_after: Date;
        issued_at: Date | null;
        revoked_at: Date | null;
        revocation_reason: number | null;
        predecessor_serial: string | null;
      }>(
        `SELECT c.serial, ${CERT_STATUS} AS status, c.not_before, c.not_after, c.issued_at, c.revoked_at,
                c.revocation_reason, c.predecessor_serial
           FROM certificates c WHERE c.device_id = $1 ORDER BY c.created_at`,
        [deviceId],
      );
      return {
        ...toSummary(device),
        certificates: certs.rows.map((c) => ({
          serial: c.serial,
          status: c.status,
          notBefore: c.not_before.toISOString(),
          notAfter: c.not_after.toISOString(),
          issuedAt: c.issued_at?.toISOString() ?? null,
          revokedAt: c.revoked_at?.toISOString() ?? null,
          revocationReason: reasonName(c.revocation_reason),
          predecessorSerial: c.predecessor_serial,
        })),
      };
    },
  };
}
