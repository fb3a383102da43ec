// The hash-chained audit trail (db/migrations/007_fleet_admin.sql). Rows are chained by the database at commit, so
// append is a plain INSERT; verify recomputes every row's hash in Postgres and checks the links and the seqs here.
import type pg from 'pg';
import type { AuditBreak, AuditEntry, AuditEvent, AuditQuery, AuditTrail, AuditVerification } from '@enrolld/core/audit/ports.js';

/** Rows per verification batch: one round trip each, a few MB. */
const VERIFY_BATCH = 20_000;
const GENESIS: Buffer = Buffer.alloc(32);

interface EventRow {
  chain_seq: string;
  id: string;
  at: Date;
  action: string;
  actor: string;
  device_id: string | null;
  serial: string | null;
  request_id: string | null;
  detail: Record<string, unknown>;
  hash: Buffer;
}

const toEvent = (r: EventRow): AuditEvent => ({
  seq: Number(r.chain_seq),
  id: Number(r.id),
  at: r.at,
  action: r.action,
  actor: r.actor,
  deviceId: r.device_id,
  serial: r.serial,
  requestId: r.request_id,
  detail: r.detail,
  hash: r.hash.toString('hex'),
});

export function createPgAuditStore(pool: pg.Pool): AuditTrail {
  return {
    async append(entry: AuditEntry) {
      await pool.query(
        'INSERT INTO audit_events (action, actor, device_id, serial, request_id, detail) VALUES ($1, $2, $3, $4, $5, $6)',
        [entry.action, entry.actor, entry.deviceId ?? null, entry.serial ?? null, entry.requestId ?? null, entry.detail ?? {}],
      );
    },

    async list(query: AuditQuery) {
      const { rows } = await pool.query<EventRow>(
        `SELECT chain_seq, id, at, action, actor, device_id, serial, request_id, detail, hash FROM audit_events
          WHERE chain_seq IS NOT NULL AND ($1::bigint IS NULL OR chain_seq < $1)
            AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR actor = $3) AND ($4::text IS NULL OR device_id = $4)
            AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
          ORDER BY chain_seq DESC LIMIT $7`,
        [query.before ?? null, query.action ?? null, query.actor ?? null, query.deviceId ?? null, query.since ?? null, query.until ?? null, query.limit],
      );
      return rows.map(toEvent);
    },

    async verify(): Promise<AuditVerification> {
      const outside = await pool.query<{ id: string }>('SELECT id FROM audit_events WHERE chain_seq IS NULL ORDER BY id LIMIT 1');
      let rows = 0;
      let lastSeq = 0;
      let lastId: number | null = null;
      let lastHash = GENESIS;
      let firstBreak: AuditBreak | null = null;
      for (;;) {
        const batch = await pool.query<{ chain_seq: string; id: string; prev_hash: Buffer | null; hash: Buffer | null; intact: boolean | null }>(
          `SELECT chain_seq, id, prev_hash, hash,
                  hash = sha256(prev_hash || enrolld_audit_content(chain_seq, id, at, action, actor, device_id, serial, request_id, detail)) AS intact
             FROM audit_events WHERE chain_seq > $1 ORDER BY chain_seq LIMIT $2`,
          [lastSeq, VERIFY_BATCH],
        );
        for (const r of batch.rows) {
          const seq = Number(r.chain_seq);
          const id = Number(r.id);
          rows += 1;
          if (seq !== lastSeq + 1) {
            firstBreak = {
              kind: 'deleted',
              id: lastId,
              seq: lastSeq + 1,
              message: `chain seq ${lastSeq + 1}${seq - 1 > lastSeq + 1 ? `–${seq - 1}` : ''} missing: deleted ${lastId === null ? 'before the first row' : `after row id ${lastId}`} (next row id ${id}, seq ${seq})`,
            };
          } else if (r.intact !== true) {
            firstBreak = { kind: 'altered', id, seq, message: `row id ${id} (chain seq ${seq}) was altered: its content no longer matches its hash` };
          } else if (!r.prev_hash!.equals(lastHash)) {
            firstBreak = {
              kind: 'relinked',
              id,
              seq,
              message: `row id ${id} (chain seq ${seq}) does not follow the row before it: a row was inserted here, or row id ${lastId ?? '-'} (seq ${lastSeq}) was replaced`,
            };
          }
          if (firstBreak) break;
          lastSeq = seq;
          lastId = id;
          lastHash = r.hash!;
        }
        if (firstBreak || batch.rows.length < VERIFY_BATCH) break;
      }
      if (!firstBreak && outside.rows[0]) {
        const id = Number(outside.rows[0].id);
        firstBreak = { kind: 'outside', id, seq: null, message: `row id ${id} is not in the chain: it was inserted without the chain trigger` };
      }
      return {
        ok: firstBreak === null,
        rows,
        head: lastId === null ? null : { seq: lastSeq, hash: lastHash.toString('hex') },
        firstBreak,
      };
    },
  };
}
