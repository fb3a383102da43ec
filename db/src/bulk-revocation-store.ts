// Bulk revocation jobs and their frozen target lists (db/migrations/007_fleet_admin.sql). The selector is one fixed
// statement whose parameters switch its filters on (no SQL assembled from input).
import type pg from 'pg';
import type { BulkRevocationJob, BulkRevocationStore, BulkSelector, BulkTarget } from '@enrolld/core/revocation/ports.js';
import { inTransaction } from './transaction.js';

// Unrevoked certificates matching every filter given (a token batch: of the devices whose last enrollment used it). Without a status only unexpired ones; a serial list alone also
// takes expired ones (the admin named them). A profile name is matched in the environment given, or in any. starts_with,
// not LIKE: '_' is a device id character and a LIKE wildcard.
// Admins' certificates are never taken: `enrolld admin revoke` revokes them (an operator must not lock an owner out).
const SELECTED = `
  SELECT c.serial, c.device_id FROM certificates c JOIN devices d ON d.id = c.device_id
   WHERE c.revoked_at IS NULL AND d.kind <> 'admin'
     AND ($7::text IS NULL OR c.environment = $7)
     AND ($1::text IS NULL OR starts_with(c.device_id, $1))
     AND ($2::text IS NULL OR d.profile = $2)
     AND ($3::timestamptz IS NULL OR c.issued_at < $3)
     AND ($4::timestamptz IS NULL OR c.issued_at >= $4)
     AND ($5::text[] IS NULL OR c.serial = ANY($5))
     AND ($8::uuid IS NULL OR d.token_batch = $8)
     AND CASE $6::text
           WHEN 'active' THEN c.der IS NOT NULL AND c.not_after > now()
           WHEN 'pending' THEN c.der IS NULL AND c.not_after > now()
           WHEN 'expired' THEN c.not_after <= now()
           ELSE $5::text[] IS NOT NULL OR c.not_after > now()
         END`;

const selectorParams = (s: BulkSelector) => [
  s.prefix ?? null,
  s.profile ?? null,
  s.issuedBefore ?? null,
  s.issuedAfter ?? null,
  s.serials ?? null,
  s.status ?? null,
  s.environment ?? null,
  s.tokenBatch ?? null,
];

interface JobRow {
  id: string;
  status: BulkRevocationJob['status'];
  selector: BulkSelector;
  reason: string;
  actor: string;
  total: number;
  done: number;
  revoked: number;
  error: string | null;
  created_at: Date;
  finished_at: Date | null;
}

const toJob = (r: JobRow): BulkRevocationJob => ({
  id: r.id,
  status: r.status,
  selector: r.selector,
  reason: r.reason,
  actor: r.actor,
  total: r.total,
  done: r.done,
  revoked: r.revoked,
  error: r.error,
  createdAt: r.created_at,
  finishedAt: r.finished_at,
});

const JOB_COLUMNS = 'id, status, selector, reason, actor, total, done, revoked, error, created_at, finished_at';

export function createPgBulkRevocationStore(pool: pg.Pool): BulkRevocationStore {
  return {
    async preview(selector, sampleSize) {
      const { rows } = await pool.query<{ serial: string; device_id: string; position: string; count: string }>(
        `SELECT s.serial, s.device_id, row_number() OVER (ORDER BY s.device_id, s.serial) AS position, count(*) OVER () AS count
           FROM (${SELECTED}) s ORDER BY s.device_id, s.serial LIMIT $9`,
        [...selectorParams(selector), sampleSize],
      );
      if (rows.length === 0) return { count: 0, sample: [] };
      return {
        count: Number(rows[0]!.count),
        sample: rows.map((r) => ({ position: Number(r.position), deviceId: r.device_id, serial: r.serial })),
      };
    },

    async create(job) {
      return inTransaction(pool, 'none', async (client) => {
        await client.query(
          `INSERT INTO bulk_revocations (id, selector, reason, actor, request_id, total) VALUES ($1, $2, $3, $4, $5, 0)`,
          [job.id, job.selector, job.reason, job.actor, job.requestId ?? null],
        );
        const { rows } = await client.query<JobRow>(
          `WITH targets AS (
             INSERT INTO bulk_revocation_targets (job_id, position, serial, device_id)
             SELECT $9, row_number() OVER (ORDER BY s.device_id, s.serial), s.serial, s.device_id FROM (${SELECTED}) s
             RETURNING 1
           )
           UPDATE bulk_revocations SET total = (SELECT count(*) FROM targets) WHERE id = $9 RETURNING ${JOB_COLUMNS}`,
          [...selectorParams(job.selector), job.id],
        );
        const created = toJob(rows[0]!);
        await client.query(
          `INSERT INTO audit_events (action, actor, request_id, detail) VALUES ('revocation.bulk.created', $1, $2, $3)`,
          [job.actor, job.requestId ?? null, { jobId: job.id, selector: job.selector, reason: job.reason, total: created.total }],
        );
        return created;
      });
    },

    async get(id) {
      const { rows } = await pool.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM bulk_revocations WHERE id = $1`, [id]);
      return rows[0] ? toJob(rows[0]) : undefined;
    },

    async list(limit) {
      const { rows } = await pool.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM bulk_revocations ORDER BY created_at DESC LIMIT $1`, [limit]);
      return rows.map(toJob);
    },

    async unfinished() {
      const { rows } = await pool.query<{ id: string }>(`SELECT id FROM bulk_revocations WHERE status IN ('queued', 'running') ORDER BY created_at`);
      return rows.map((r) => r.id);
    },

    async pending(id, limit) {
      const { rows } = await pool.query<{ position: number; device_id: string; serial: string }>(
        `SELECT position, device_id, serial FROM bulk_revocation_targets WHERE job_id = $1 AND NOT processed ORDER BY position LIMIT $2`,
        [id, limit],
      );
      return rows.map((r): BulkTarget => ({ position: r.position, deviceId: r.device_id, serial: r.serial }));
    },

    async markProcessed(id, positions, requestId) {
      await inTransaction(pool, 'none', async (client) => {
        await client.query(`UPDATE bulk_revocation_targets SET processed = true WHERE job_id = $1 AND position = ANY($2::int[])`, [id, positions]);
        await client.query(
          `UPDATE bulk_revocations SET
             done = (SELECT count(*) FROM bulk_revocation_targets WHERE job_id = $1 AND processed),
             revoked = (SELECT count(*) FROM audit_events WHERE request_id = $2 AND action = 'certificate.revoked')
           WHERE id = $1`,
          [id, requestId],
        );
      });
    },

    async setStatus(id, status, error) {
      await pool.query(
        `UPDATE bulk_revocations SET status = $2, error = $3, finished_at = CASE WHEN $2 IN ('done', 'failed') THEN now() END WHERE id = $1`,
        [id, status, error ?? null],
      );
    },
  };
}
