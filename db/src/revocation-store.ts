// Revocations, their fan-out and the CRL state (docs/architecture.md, RFC 5280 §5). Implements the RevocationStore
// and RevocationFeed ports of core/src/revocation/ports.ts. Serials arrive and are stored in canonical form
// (@enrolld/protocol serial.ts), so a lookup by serial is a plain equality.
import type pg from 'pg';
import type {
  CrlBuildInput,
  CrlRebuildOutcome,
  RevocationCommand,
  RevocationFeed,
  RevocationFeedHandlers,
  RevocationOutcome,
  RevocationSnapshot,
  RevocationStore,
  RevokedCertificate,
  StoredCrl,
} from '@enrolld/core/revocation/ports.js';
import { DEFAULT_ENVIRONMENT } from '@enrolld/protocol';
import { createPgListener } from './pg-listener.js';
import { CRL_LOCK_CLASS, inTransaction } from './transaction.js';

interface CrlRow {
  crl_number: string;
  der: Buffer;
  this_update: Date;
  next_update: Date;
  covers_seq: string;
}

const crlOf = (row: CrlRow): StoredCrl => ({
  crlNumber: BigInt(row.crl_number),
  der: row.der,
  thisUpdate: row.this_update,
  nextUpdate: row.next_update,
  coversSeq: Number(row.covers_seq),
});

/**
 * One CRL rebuild of an environment at a time across every process (API replicas, the worker): a transaction-scoped
 * advisory lock keyed by the environment. Under it the newest stored CRL of the environment is the previous one.
 */
async function lockCrlOf(client: pg.ClientBase, environment: string): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [CRL_LOCK_CLASS, environment]);
}

/** Signs and stores the environment's next CRL; the caller holds its CRL lock. `startedAt` is the database's time. */
async function buildCrl(
  client: pg.ClientBase,
  build: (input: CrlBuildInput) => Buffer | Promise<Buffer>,
  validity: { thisUpdate: Date; nextUpdate: Date },
  environment: string,
  startedAt: Date,
): Promise<StoredCrl> {
  // RFC 5280 §3.3: an entry is removed only after it appeared on one CRL issued beyond its certificate's validity.
  // So: every revocation the previous CRL did not cover (listed at least once, even when already expired), and
  // every one whose notAfter the previous CRL had not yet passed. Each environment's issuing CA has its own CRL,
  // listing only its own certificates (RFC 5280 §5). The entries and the seq they cover come from one statement, so
  // from one snapshot: seqs are handed out in commit order (002_revocation.sql), so a snapshot holds a prefix of them.
  const { rows } = await client.query<{ covers: string | null; serial: string | null; revoked_at: Date; revocation_reason: number }>(
    `SELECT (SELECT max(revocation_seq) FROM certificates WHERE environment = $1) AS covers,
            e.serial, e.revoked_at, e.revocation_reason
     FROM (SELECT 1) AS one
     LEFT JOIN LATERAL (
       WITH previous AS (SELECT this_update, covers_seq FROM crls WHERE environment = $1 ORDER BY crl_number DESC LIMIT 1)
       SELECT serial, revoked_at, revocation_reason, revocation_seq FROM certificates
       WHERE revoked_at IS NOT NULL AND environment = $1
         AND (revocation_seq > COALESCE((SELECT covers_seq FROM previous), 0)
              OR not_after >= COALESCE((SELECT this_update FROM previous), '-infinity'))
     ) AS e ON true
     ORDER BY e.revocation_seq`,
    [environment],
  );
  const coversSeq = Number(rows[0]?.covers ?? 0);
  const number = await client.query<{ n: string }>(`SELECT nextval('crl_number_seq') AS n`);
  const crlNumber = BigInt(number.rows[0]!.n);
  const der = await build({
    entries: rows.filter((r) => r.serial !== null).map((r) => ({ serial: r.serial!, revokedAt: r.revoked_at, reasonCode: r.revocation_reason })),
    crlNumber,
    coversSeq,
  });
  // created_at is when the rebuild started on the database's clock: the interval between rebuilds is measured from it.
  await client.query(
    'INSERT INTO crls (crl_number, der, this_update, next_update, covers_seq, environment, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
    [crlNumber.toString(), der, validity.thisUpdate, validity.nextUpdate, coversSeq, environment, startedAt],
  );
  return { crlNumber, der, thisUpdate: validity.thisUpdate, nextUpdate: validity.nextUpdate, coversSeq };
}

const REVOKED_COLUMNS = `serial, device_id, environment, revocation_seq, revocation_reason, revoked_at`;

interface RevokedRow {
  serial: string;
  device_id: string;
  environment: string;
  revocation_seq: string;
  revocation_reason: number;
  revoked_at: Date;
}

function toRecord(row: RevokedRow): RevokedCertificate {
  return {
    serial: row.serial,
    deviceId: row.device_id,
    environment: row.environment,
    seq: Number(row.revocation_seq),
    reasonCode: row.revocation_reason,
    revokedAt: row.revoked_at,
  };
}

/** The kinds a revoke by device id or serial may reach (RevocationCommand.identities). */
const KINDS_IN_SCOPE = { fleet: ['device', 'service'], admins: ['admin'] } as const;
const kindsOf = (command: RevocationCommand) => KINDS_IN_SCOPE[command.identities ?? 'fleet'];

export function createPgRevocationStore(pool: pg.Pool): RevocationStore {
  async function audit(client: pg.ClientBase, revoked: RevokedCertificate[], command: RevocationCommand, scope: string): Promise<void> {
    if (revoked.length === 0) return;
    await client.query(
      `INSERT INTO audit_events (action, actor, device_id, serial, request_id, detail)
       SELECT 'certificate.revoked', $1, r.device_id, r.serial, $2,
              jsonb_strip_nulls(jsonb_build_object('reasonCode', r.reason, 'seq', r.seq, 'scope', $3::text, 'comment', $8::text))
       FROM unnest($4::text[], $5::text[], $6::bigint[], $7::int[]) AS r(device_id, serial, seq, reason)`,
      [
        command.actor,
        command.requestId ?? null,
        scope,
        revoked.map((r) => r.deviceId),
        revoked.map((r) => r.serial),
        revoked.map((r) => r.seq),
        revoked.map((r) => r.reasonCode),
        command.comment ?? null,
      ],
    );
  }

  return {
    async revokeDevice(deviceId: string, command: RevocationCommand): Promise<RevocationOutcome> {
      return inTransaction(pool, 'revocation', async (client) => {
        const device = await client.query('SELECT 1 FROM devices WHERE id = $1 AND kind = ANY($2::text[])', [deviceId, kindsOf(command)]);
        if (device.rowCount === 0) return { outcome: 'not-found' } as const;
        // One UPDATE … WHERE revoked_at IS NULL: a concurrent revoke re-evaluates the predicate after our commit and
        // finds nothing left, so each certificate is revoked exactly once. Pending intents (der IS NULL) are included:
        // a signature may exist for them (Boulder: every row is revocable by serial).
        const { rows } = await client.query<RevokedRow>(
          `UPDATE certificates SET revoked_at = now(), revocation_reason = $2
           WHERE device_id = $1 AND revoked_at IS NULL AND not_after > now()
           RETURNING ${REVOKED_COLUMNS}`,
          [deviceId, command.reasonCode],
        );
        const revoked = rows.map(toRecord).sort((a, b) => a.seq - b.seq);
        await audit(client, revoked, command, 'device');
        if (revoked.length === 0) return { outcome: 'already-revoked', deviceId, revoked: [] } as const;
        return { outcome: 'revoked', deviceId, revoked } as const;
      });
    },

    async revokeCertificate(serial: string, command: RevocationCommand): Promise<RevocationOutcome> {
      return inTransaction(pool, 'revocation', async (client) => {
        const found = await client.query<{ device_id: string }>(
          'SELECT device_id FROM certificates WHERE serial = $1 AND identity_kind = ANY($2::text[])',
          [serial, kindsOf(command)],
        );
        const cert = found.rows[0];
        if (!cert) return { outcome: 'not-found' } as const;
        // An expired certificate is revoked too when asked by serial: the admin named it explicitly.
        const { rows } = await client.query<RevokedRow>(
          `UPDATE certificates SET revoked_at = now(), revocation_reason = $2
           WHERE serial = $1 AND revoked_at IS NULL
           RETURNING ${REVOKED_COLUMNS}`,
          [serial, command.reasonCode],
        );
        const revoked = rows.map(toRecord);
        await audit(client, revoked, command, 'certificate');
        if (revoked.length === 0) return { outcome: 'already-revoked', deviceId: cert.device_id, revoked: [] } as const;
        return { outcome: 'revoked', deviceId: cert.device_id, revoked } as const;
      });
    },

    async revokeCertificates(serials: string[], command: RevocationCommand): Promise<RevokedCertificate[]> {
      // One autocommit statement: the pool connection is held for a single round trip. The EXISTS is a one-time filter
      // that takes the revocation lock (7160002332, db/src/transaction.ts) before any row lock, in the order every
      // revocation and renewal transaction takes them, so this cannot deadlock with them; the trigger of
      // 002_revocation.sql then assigns the seqs and queues the NOTIFYs for the commit. As with revokeCertificate, an
      // expired certificate named by serial is revoked too.
      const { rows } = await pool.query<RevokedRow>(
        `WITH revoked AS (
           UPDATE certificates SET revoked_at = now(), revocation_reason = $2
           WHERE serial = ANY($1::text[]) AND revoked_at IS NULL AND EXISTS (SELECT pg_advisory_xact_lock(7160002332))
           RETURNING ${REVOKED_COLUMNS}
         ), audited AS (
           INSERT INTO audit_events (action, actor, device_id, serial, request_id, detail)
           SELECT 'certificate.revoked', $3, device_id, serial, $4,
                  jsonb_build_object('reasonCode', revocation_reason, 'seq', revocation_seq, 'scope', 'certificate')
           FROM revoked
         )
         SELECT ${REVOKED_COLUMNS} FROM revoked ORDER BY revocation_seq`,
        [serials, command.reasonCode, command.actor, command.requestId ?? null],
      );
      return rows.map(toRecord);
    },

    async revokedSince(seq: number, limit = 10_000): Promise<RevokedCertificate[]> {
      const { rows } = await pool.query<RevokedRow>(
        `SELECT ${REVOKED_COLUMNS} FROM certificates WHERE revocation_seq > $1 ORDER BY revocation_seq LIMIT $2`,
        [seq, limit],
      );
      return rows.map(toRecord);
    },

    async snapshot(): Promise<RevocationSnapshot> {
      // One statement, one MVCC snapshot: the seq and the list agree. It grows with the revocations: a bulk bound.
      const { rows } = await inTransaction(
        pool,
        'none',
        (client) =>
          client.query<RevokedRow & { last_seq: string | null }>(
            `WITH last AS (SELECT max(revocation_seq) AS last_seq FROM certificates)
             SELECT c.serial, c.device_id, c.environment, c.revocation_seq, c.revocation_reason, c.revoked_at, last.last_seq
             FROM last LEFT JOIN certificates c ON c.revoked_at IS NOT NULL AND c.not_after > now() - interval '1 day'
             ORDER BY c.revocation_seq`,
          ),
        { bulk: true },
      );
      const lastSeq = Number(rows[0]?.last_seq ?? 0);
      const revoked = rows.filter((r) => r.serial !== null).map(toRecord);
      return { revoked, lastSeq };
    },

    async lastSeq(environment = DEFAULT_ENVIRONMENT): Promise<number> {
      const { rows } = await pool.query<{ last: string | null }>('SELECT max(revocation_seq) AS last FROM certificates WHERE environment = $1', [environment]);
      return Number(rows[0]?.last ?? 0);
    },

    async regenerateCrl(build, validity, environment = DEFAULT_ENVIRONMENT): Promise<StoredCrl> {
      return inTransaction(pool, 'none', async (client) => {
        await lockCrlOf(client, environment);
        const now = await client.query<{ now: Date }>('SELECT clock_timestamp() AS now');
        return buildCrl(client, build, validity, environment, now.rows[0]!.now);
      }, { bulk: true });
    },

    async rebuildCrlWhenDue(build, validity, environment, rule): Promise<CrlRebuildOutcome> {
      return inTransaction(pool, 'none', async (client) => {
        await lockCrlOf(client, environment);
        // One statement, so the newest CRL and the highest seq are read from one snapshot, taken after the lock: a CRL
        // another replica stored while this one waited is seen. The time is the database's, shared by every replica.
        const { rows } = await client.query<CrlRow & { now: Date; last_seq: string | null; crl_number: string | null; created_at: Date | null }>(
          `SELECT clock_timestamp() AS now,
                  (SELECT max(revocation_seq) FROM certificates WHERE environment = $1) AS last_seq,
                  c.crl_number, c.der, c.this_update, c.next_update, c.covers_seq, c.created_at
           FROM (SELECT 1) AS one
           LEFT JOIN LATERAL (SELECT * FROM crls WHERE environment = $1 ORDER BY crl_number DESC LIMIT 1) AS c ON true`,
          [environment],
        );
        const row = rows[0]!;
        const now = row.now.getTime();
        if (row.crl_number !== null && row.created_at !== null) {
          const latest = crlOf(row as CrlRow);
          const coversAll = latest.coversSeq >= Number(row.last_seq ?? 0);
          if (coversAll && now < row.created_at.getTime() + rule.currentForMs && now < latest.nextUpdate.getTime()) return { outcome: 'current', crl: latest };
          // A newest CRL made "later" than now means the database's clock stepped back: it is no reason to wait.
          const dueAt = row.created_at.getTime() + rule.minIntervalMs;
          if (now >= row.created_at.getTime() && now < dueAt) return { outcome: 'not-due', retryInMs: Math.max(1, Math.ceil(dueAt - now)) };
        }
        return { outcome: 'built', crl: await buildCrl(client, build, validity, environment, row.now) };
      }, { bulk: true });
    },

    async latestCrl(environment = DEFAULT_ENVIRONMENT): Promise<StoredCrl | undefined> {
      const { rows } = await pool.query<{ crl_number: string; der: Buffer; this_update: Date; next_update: Date; covers_seq: string }>(
        'SELECT crl_number, der, this_update, next_update, covers_seq FROM crls WHERE environment = $1 ORDER BY crl_number DESC LIMIT 1',
        [environment],
      );
      const row = rows[0];
      return row ? crlOf(row) : undefined;
    },
  };
}

export interface RevocationListenerOptions {
  connectionString: string;
  /** Delay before reconnecting after the LISTEN connection dropped. */
  reconnectDelayMs?: number;
  applicationName?: string;
}

export const REVOCATION_CHANNELS = ['enrolld_revocation', 'enrolld_crl'] as const;

/** Hands a notification of REVOCATION_CHANNELS to the feed handlers (payloads of the triggers in 002_revocation.sql). */
export function deliverRevocationNotification(channel: string, payload: string, h: Pick<RevocationFeedHandlers, 'onRevocation' | 'onCrl'>): void {
  if (channel === 'enrolld_revocation') {
    try {
      const p = JSON.parse(payload) as { serial: string; deviceId: string; seq: number | string; reasonCode: number; atMs: number | string };
      h.onRevocation({ serial: p.serial, deviceId: p.deviceId, seq: Number(p.seq), reasonCode: p.reasonCode, atMs: Number(p.atMs) });
    } catch {
      // A malformed payload cannot come from our trigger; the seq resync repairs whatever it was.
    }
  } else if (channel === 'enrolld_crl' && /^\d+$/.test(payload)) {
    h.onCrl(BigInt(payload));
  }
}

/**
 * LISTEN on a dedicated connection (a pooled one would lose its LISTEN on release). Postgres delivers NOTIFY only on
 * commit, in commit order. When the connection drops, events sent meanwhile are lost: the consumer learns it through
 * onConnection(false) and must resync by seq (revokedSince) once onConnection(true) fires again.
 */
export function createPgRevocationListener(options: RevocationListenerOptions): RevocationFeed {
  const listener = createPgListener({ ...options, channels: REVOCATION_CHANNELS, applicationName: options.applicationName ?? 'enrolld-revocation-listener' });
  return {
    start: (h: RevocationFeedHandlers) =>
      listener.start({
        onConnection: (connected, error) => h.onConnection(connected, error),
        onNotification: (channel, payload) => deliverRevocationNotification(channel, payload, h),
      }),
    stop: () => listener.stop(),
  };
}
