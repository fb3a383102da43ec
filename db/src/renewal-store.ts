// Rotation with lineage (DESIGN.md §4, issue 5): successor intents, supersession bookkeeping, the renewal-window sweep,
// once-only rotation hints and their fan-out. Implements the ports server/src/core/renewal/ports.ts declares; the
// shapes are repeated here because db never imports server.
import pg from 'pg';
import type { CertificateIntentRecord, IssuedCertificateRecord } from './records.js';

export interface RenewalCertificateRecord {
  serial: string;
  deviceId: string;
  profile: string;
  der: Buffer | null;
  notBefore: Date;
  notAfter: Date;
  publicKeySha256: Buffer;
  revokedAt: Date | null;
  revocationReason: number | null;
  predecessorSerial: string | null;
}

export type BeginRenewalRecordResult =
  | { outcome: 'begun'; intent: CertificateIntentRecord }
  | { outcome: 'replay'; certificate: IssuedCertificateRecord }
  | { outcome: 'resume'; intent: CertificateIntentRecord }
  | { outcome: 'in-progress' }
  | { outcome: 'successor-exists'; successorSerial: string }
  | { outcome: 'key-reused'; serial: string }
  | { outcome: 'revoked'; reasonCode: number; revokedAt: Date }
  | { outcome: 'not-found' };

export interface BeginRenewalInput {
  predecessorSerial: string;
  csrSha256: Buffer;
  publicKeySha256: Buffer;
  inFlightSeconds: number;
  buildIntent: (predecessor: RenewalCertificateRecord) => CertificateIntentRecord;
}

export interface PendingSupersessionRecord {
  successorSerial: string;
  predecessorSerial: string;
  deviceId: string;
  issuedAt: Date;
}

export interface RenewalCandidateRecord {
  serial: string;
  deviceId: string;
  notBefore: Date;
  notAfter: Date;
}

export interface RotationHintRecord {
  serial: string;
  deviceId: string;
  notAfter: Date;
}

// revocation-store.ts takes this advisory lock exclusively before it revokes (and 002_revocation.sql's trigger takes it
// again). A renewal holds it *shared* while it records a successor, so renewals run side by side but never interleave
// with a revocation: without it, a device revoke whose UPDATE snapshot predates a successor committed while the UPDATE
// waited on the predecessor's row lock would leave that successor live (found by the ROT-03 race test).
const REVOCATION_LOCK_KEY = 7_160_002_332;

export const ROTATION_HINT_CHANNEL = 'enrolld_rotation_hint';
export const RENEWAL_CHANNEL = 'enrolld_renewal';

interface CertRow {
  serial: string;
  device_id: string;
  profile: string;
  der: Buffer | null;
  not_before: Date;
  not_after: Date;
  public_key_sha256: Buffer;
  csr_sha256: Buffer;
  tbs_der: Buffer;
  revoked_at: Date | null;
  revocation_reason: number | null;
  predecessor_serial: string | null;
  age_seconds?: number;
}

const CERT_COLUMNS = `serial, device_id, profile, der, not_before, not_after, public_key_sha256, csr_sha256, tbs_der,
  revoked_at, revocation_reason, predecessor_serial`;

function toCertificate(row: CertRow): RenewalCertificateRecord {
  return {
    serial: row.serial,
    deviceId: row.device_id,
    profile: row.profile,
    der: row.der,
    notBefore: row.not_before,
    notAfter: row.not_after,
    publicKeySha256: row.public_key_sha256,
    revokedAt: row.revoked_at,
    revocationReason: row.revocation_reason,
    predecessorSerial: row.predecessor_serial,
  };
}

function toIntent(row: CertRow): CertificateIntentRecord {
  return {
    serial: row.serial,
    deviceId: row.device_id,
    profile: row.profile,
    notBefore: row.not_before,
    notAfter: row.not_after,
    publicKeySha256: row.public_key_sha256,
    csrSha256: row.csr_sha256,
    tbsDer: row.tbs_der,
    predecessorSerial: row.predecessor_serial ?? undefined,
  };
}

/** The forms a serial may be stored in: as given, without leading zeros, and with one "00" (a high-bit serial). */
function serialForms(serial: string): string[] {
  const lower = serial.toLowerCase();
  const bare = lower.replace(/^0+/, '') || '0';
  return [...new Set([lower, bare, `00${bare}`, bare.length % 2 === 1 ? `0${bare}` : bare])];
}

const INSERT_INTENT = `
  INSERT INTO certificates
    (serial, device_id, profile, token_id, predecessor_serial, public_key_sha256, csr_sha256, tbs_der, not_before, not_after)
  VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8, $9)`;

interface PendingRow {
  successor_serial: string;
  predecessor_serial: string;
  device_id: string;
  issued_at: Date;
}

const toPending = (r: PendingRow): PendingSupersessionRecord => ({
  successorSerial: r.successor_serial,
  predecessorSerial: r.predecessor_serial,
  deviceId: r.device_id,
  issuedAt: r.issued_at,
});

// Successors that are issued and live whose predecessor is still unrevoked and unexpired: what remains to supersede.
const PENDING_SELECT = `
  SELECT s.serial AS successor_serial, p.serial AS predecessor_serial, s.device_id, s.issued_at
    FROM certificates s
    JOIN certificates p ON p.serial = s.predecessor_serial
   WHERE s.predecessor_serial IS NOT NULL AND s.der IS NOT NULL AND s.revoked_at IS NULL
     AND p.revoked_at IS NULL AND p.not_after > now()`;

export function createPgRenewalStore(pool: pg.Pool) {
  return {
    async findCertificate(serial: string): Promise<RenewalCertificateRecord | undefined> {
      const { rows } = await pool.query<CertRow>(`SELECT ${CERT_COLUMNS} FROM certificates WHERE serial = ANY($1::text[]) LIMIT 1`, [
        serialForms(serial),
      ]);
      return rows[0] ? toCertificate(rows[0]) : undefined;
    },

    /**
     * The predecessor row is locked FOR UPDATE, so renewals of one certificate run one after another through this
     * transaction; the unique index on predecessor_serial (003_rotation.sql) is the backstop that holds even if a
     * writer skipped the lock. Lock order is the revocation's (advisory lock, then rows), so the two never deadlock.
     */
    async beginRenewal(input: BeginRenewalInput): Promise<BeginRenewalRecordResult> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SELECT pg_advisory_xact_lock_shared($1)', [REVOCATION_LOCK_KEY]);
        const locked = await client.query<CertRow>(
          `SELECT ${CERT_COLUMNS} FROM certificates WHERE serial = ANY($1::text[]) LIMIT 1 FOR UPDATE`,
          [serialForms(input.predecessorSerial)],
        );
        const row = locked.rows[0];
        if (!row) {
          await client.query('ROLLBACK');
          return { outcome: 'not-found' };
        }
        if (row.revoked_at !== null) {
          await client.query('ROLLBACK');
          return { outcome: 'revoked', reasonCode: row.revocation_reason ?? 0, revokedAt: row.revoked_at };
        }
        const successor = (
          await client.query<CertRow>(
            `SELECT ${CERT_COLUMNS}, extract(epoch FROM now() - created_at)::float8 AS age_seconds
               FROM certificates WHERE predecessor_serial = $1`,
            [row.serial],
          )
        ).rows[0];
        if (successor) {
          await client.query('ROLLBACK');
          if (!successor.csr_sha256.equals(input.csrSha256)) return { outcome: 'successor-exists', successorSerial: successor.serial };
          if (successor.der) {
            return {
              outcome: 'replay',
              certificate: {
                serial: successor.serial,
                deviceId: successor.device_id,
                der: successor.der,
                notBefore: successor.not_before,
                notAfter: successor.not_after,
              },
            };
          }
          if ((successor.age_seconds ?? 0) < input.inFlightSeconds) return { outcome: 'in-progress' };
          return { outcome: 'resume', intent: toIntent(successor) };
        }
        const reused = await client.query<{ serial: string }>('SELECT serial FROM certificates WHERE public_key_sha256 = $1 LIMIT 1', [
          input.publicKeySha256,
        ]);
        if (reused.rows[0]) {
          await client.query('ROLLBACK');
          return { outcome: 'key-reused', serial: reused.rows[0].serial };
        }
        let intent: CertificateIntentRecord;
        try {
          intent = input.buildIntent(toCertificate(row));
        } catch (error) {
          await client.query('ROLLBACK');
          throw error;
        }
        await client.query(INSERT_INTENT, [
          intent.serial, intent.deviceId, intent.profile, row.serial, intent.publicKeySha256, intent.csrSha256, intent.tbsDer,
          intent.notBefore, intent.notAfter,
        ]);
        await client.query('COMMIT');
        return { outcome: 'begun', intent: { ...intent, predecessorSerial: row.serial } };
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },

    /** Idempotent: the first signature stored wins. Announces the new successor on commit (NOTIFY enrolld_renewal). */
    async complete(serial: string, der: Buffer, requestId?: string): Promise<IssuedCertificateRecord> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const updated = await client.query<{ device_id: string; der: Buffer; not_before: Date; not_after: Date; predecessor_serial: string | null; issued_at: Date }>(
          `UPDATE certificates SET der = $2, issued_at = now() WHERE serial = $1 AND der IS NULL
           RETURNING device_id, der, not_before, not_after, predecessor_serial, issued_at`,
          [serial, der],
        );
        let row: { device_id: string; der: Buffer; not_before: Date; not_after: Date } | undefined = updated.rows[0];
        const fresh = updated.rows[0];
        if (fresh) {
          await client.query(
            `INSERT INTO audit_events (action, actor, device_id, serial, request_id, detail)
             VALUES ('certificate.renewed', 'renewal', $1, $2, $3, jsonb_build_object('predecessorSerial', $4::text))`,
            [fresh.device_id, serial, requestId ?? null, fresh.predecessor_serial],
          );
          if (fresh.predecessor_serial) {
            await client.query('SELECT pg_notify($1, $2)', [
              RENEWAL_CHANNEL,
              JSON.stringify({
                successorSerial: serial,
                predecessorSerial: fresh.predecessor_serial,
                deviceId: fresh.device_id,
                issuedAtMs: fresh.issued_at.getTime(),
              }),
            ]);
          }
        } else {
          const stored = await client.query<{ device_id: string; der: Buffer; not_before: Date; not_after: Date }>(
            'SELECT device_id, der, not_before, not_after FROM certificates WHERE serial = $1 AND der IS NOT NULL',
            [serial],
          );
          row = stored.rows[0];
          if (!row) throw new Error(`certificate ${serial} has no intent row`);
        }
        await client.query('COMMIT');
        return { serial, deviceId: row!.device_id, der: row!.der, notBefore: row!.not_before, notAfter: row!.not_after };
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },

    async pendingSupersessions(limit: number): Promise<PendingSupersessionRecord[]> {
      const { rows } = await pool.query<PendingRow>(`${PENDING_SELECT} ORDER BY s.issued_at LIMIT $1`, [limit]);
      return rows.map(toPending);
    },

    async dueSupersessions(graceSeconds: number, limit: number): Promise<PendingSupersessionRecord[]> {
      const { rows } = await pool.query<PendingRow>(
        `${PENDING_SELECT} AND s.issued_at <= now() - make_interval(secs => $1) ORDER BY s.issued_at LIMIT $2`,
        [graceSeconds, limit],
      );
      return rows.map(toPending);
    },

    async descendants(serial: string): Promise<string[]> {
      const { rows } = await pool.query<{ serial: string }>(
        `WITH RECURSIVE start AS (SELECT serial FROM certificates WHERE serial = ANY($1::text[]) LIMIT 1),
              lineage(serial, depth) AS (
                SELECT c.serial, 1 FROM certificates c JOIN start ON c.predecessor_serial = start.serial
                UNION ALL
                SELECT c.serial, l.depth + 1 FROM certificates c JOIN lineage l ON c.predecessor_serial = l.serial WHERE l.depth < 10000
              )
         SELECT serial FROM lineage ORDER BY depth`,
        [serialForms(serial)],
      );
      return rows.map((r) => r.serial);
    },

    // ───────────── rotation sweep ─────────────

    async renewalCandidates(windowFraction: number, limit: number): Promise<RenewalCandidateRecord[]> {
      const { rows } = await pool.query<{ serial: string; device_id: string; not_before: Date; not_after: Date }>(
        `SELECT c.serial, c.device_id, c.not_before, c.not_after
           FROM certificates c
          WHERE c.der IS NOT NULL AND c.revoked_at IS NULL AND c.not_after > now()
            AND now() >= c.not_after - (c.not_after - c.not_before) * $1::float8
            AND NOT EXISTS (SELECT 1 FROM certificates s WHERE s.predecessor_serial = c.serial)
            AND NOT EXISTS (SELECT 1 FROM rotation_hints h WHERE h.serial = c.serial)
          ORDER BY c.not_after
          LIMIT $2`,
        [windowFraction, limit],
      );
      return rows.map((r) => ({ serial: r.serial, deviceId: r.device_id, notBefore: r.not_before, notAfter: r.not_after }));
    },

    async claimHint(serial: string): Promise<RotationHintRecord | undefined> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        // The conditional INSERT is the only arbiter: a re-run job (at-least-once) finds the row and sends nothing.
        const { rows } = await client.query<{ serial: string; device_id: string; not_after: Date }>(
          `WITH live AS (
             SELECT c.serial, c.device_id, c.not_after FROM certificates c
              WHERE c.serial = $1 AND c.der IS NOT NULL AND c.revoked_at IS NULL AND c.not_after > now()
                AND NOT EXISTS (SELECT 1 FROM certificates s WHERE s.predecessor_serial = c.serial)
           ), ins AS (
             INSERT INTO rotation_hints (serial, device_id) SELECT serial, device_id FROM live
             ON CONFLICT (serial) DO NOTHING RETURNING serial
           )
           SELECT live.serial, live.device_id, live.not_after FROM live JOIN ins USING (serial)`,
          [serial],
        );
        const won = rows[0];
        if (!won) {
          await client.query('ROLLBACK');
          return undefined;
        }
        const hint = { serial: won.serial, deviceId: won.device_id, notAfter: won.not_after };
        // Queued now, delivered only on commit (and never for a rolled-back claim).
        await client.query('SELECT pg_notify($1, $2)', [
          ROTATION_HINT_CHANNEL,
          JSON.stringify({ serial: hint.serial, deviceId: hint.deviceId, notAfterMs: hint.notAfter.getTime() }),
        ]);
        await client.query(
          `INSERT INTO audit_events (action, actor, device_id, serial) VALUES ('rotation.hinted', 'rotation-sweep', $1, $2)`,
          [hint.deviceId, hint.serial],
        );
        await client.query('COMMIT');
        return hint;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },

    // ───────────── EST simpleenroll: whose token is this ─────────────

    async deviceOfToken(tokenHash: Buffer): Promise<string | undefined> {
      const { rows } = await pool.query<{ device_id: string }>('SELECT device_id FROM bootstrap_tokens WHERE token_hash = $1', [tokenHash]);
      return rows[0]?.device_id;
    },
  };
}

export type PgRenewalStore = ReturnType<typeof createPgRenewalStore>;

export interface RotationListenerHandlers {
  onHint(hint: RotationHintRecord): void;
  onRenewal(renewal: PendingSupersessionRecord): void;
  onConnection(connected: boolean, error?: unknown): void;
}

export interface RotationListenerOptions {
  connectionString: string;
  reconnectDelayMs?: number;
  applicationName?: string;
}

/**
 * LISTEN for rotation hints and renewals on a dedicated connection (a pooled one would lose its LISTEN on release).
 * NOTIFY is at-most-once: a hint sent while this connection is down is gone. That costs an accelerator, not
 * correctness: devices also renew on their own timer (DESIGN.md §4), and lineage catches up from the store.
 */
export function createPgRotationListener(options: RotationListenerOptions) {
  const reconnectDelayMs = options.reconnectDelayMs ?? 1000;
  let client: pg.Client | undefined;
  let handlers: RotationListenerHandlers | undefined;
  let stopped = true;
  let timer: NodeJS.Timeout | undefined;

  function scheduleReconnect(): void {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, reconnectDelayMs);
  }

  async function connect(): Promise<void> {
    if (stopped || !handlers) return;
    const h = handlers;
    const c = new pg.Client({
      connectionString: options.connectionString,
      connectionTimeoutMillis: 2000,
      application_name: options.applicationName ?? 'enrolld-rotation-listener',
      keepAlive: true,
    });
    let lost = false;
    const onLost = (error?: unknown): void => {
      if (lost) return;
      lost = true;
      if (client === c) client = undefined;
      c.removeAllListeners('notification');
      void c.end().catch(() => undefined);
      if (!stopped) {
        h.onConnection(false, error);
        scheduleReconnect();
      }
    };
    c.on('error', onLost);
    c.on('end', () => onLost(new Error('LISTEN connection ended')));
    c.on('notification', (msg) => {
      if (!msg.payload) return;
      try {
        if (msg.channel === ROTATION_HINT_CHANNEL) {
          const p = JSON.parse(msg.payload) as { serial: string; deviceId: string; notAfterMs: number };
          h.onHint({ serial: p.serial, deviceId: p.deviceId, notAfter: new Date(p.notAfterMs) });
        } else if (msg.channel === RENEWAL_CHANNEL) {
          const p = JSON.parse(msg.payload) as { successorSerial: string; predecessorSerial: string; deviceId: string; issuedAtMs: number };
          h.onRenewal({ successorSerial: p.successorSerial, predecessorSerial: p.predecessorSerial, deviceId: p.deviceId, issuedAt: new Date(p.issuedAtMs) });
        }
      } catch {
        // Only our own statements notify on these channels; a malformed payload is dropped.
      }
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${ROTATION_HINT_CHANNEL}`);
      await c.query(`LISTEN ${RENEWAL_CHANNEL}`);
    } catch (error) {
      onLost(error);
      return;
    }
    if (stopped || lost) {
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
    h.onConnection(true);
  }

  return {
    async start(h: RotationListenerHandlers): Promise<void> {
      handlers = h;
      stopped = false;
      await connect();
    },
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      const c = client;
      client = undefined;
      if (c) {
        c.removeAllListeners('notification');
        c.removeAllListeners('end');
        c.on('error', () => undefined);
        await c.end().catch(() => undefined);
      }
    },
  };
}
