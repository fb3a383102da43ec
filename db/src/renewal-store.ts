// Rotation with lineage (docs/architecture.md): successor intents, supersession bookkeeping, the renewal-window sweep,
// once-only rotation hints and their fan-out. Implements the RenewalStore, RotationStore, TokenDeviceLookup and
// RotationFeed ports of core/src/renewal/ports.ts. Serials are canonical (@enrolld/protocol serial.ts) in and out.
import type pg from 'pg';
import type { CertificateIntent } from '@enrolld/core/ports.js';
import type {
  BeginRenewal,
  BeginRenewalResult,
  PendingSupersession,
  RenewalCandidate,
  RenewalCertificate,
  RenewalStore,
  RotationFeed,
  RotationFeedHandlers,
  RotationHint,
  RotationStore,
  TokenDeviceLookup,
} from '@enrolld/core/renewal/ports.js';
import { createPgListener } from './pg-listener.js';
import type { IdentityKind, ProfileSpec } from '@enrolld/protocol';
import { issuedCertificateOf, issuedColumnsOf, profileTermsOf, windowFractionOf, type IssuedRow } from './enrollment-store.js';
import { inTransaction } from './transaction.js';

export const ROTATION_HINT_CHANNEL = 'enrolld_rotation_hint';
export const RENEWAL_CHANNEL = 'enrolld_renewal';

interface CertRow {
  serial: string;
  identity_kind: IdentityKind;
  device_id: string;
  environment: string;
  profile: string;
  profile_version: number;
  device_group: string | null;
  /** The profile's current version and document (LOCK_PREDECESSOR only). */
  current_profile_version?: number | null;
  current_profile_document?: ProfileSpec | null;
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
  renewal_window_fraction?: number | null;
}

const PRED_COLUMNS = `p.serial, p.identity_kind, p.device_id, p.environment, p.profile, p.profile_version, p.device_group, p.der, p.not_before,
  p.not_after, p.public_key_sha256, p.csr_sha256, p.tbs_der, p.revoked_at, p.revocation_reason, p.predecessor_serial`;
const SUCCESSOR_COLUMNS = `s.serial AS s_serial, s.identity_kind AS s_identity_kind, s.device_id AS s_device_id, s.environment AS s_environment, s.profile AS s_profile,
  s.profile_version AS s_profile_version, s.device_group AS s_device_group, s.der AS s_der,
  s.not_before AS s_not_before, s.not_after AS s_not_after, s.public_key_sha256 AS s_public_key_sha256,
  s.csr_sha256 AS s_csr_sha256, s.tbs_der AS s_tbs_der, s.predecessor_serial AS s_predecessor_serial,
  extract(epoch FROM now() - s.created_at)::float8 AS s_age_seconds, ${windowFractionOf('s')} AS s_renewal_window_fraction`;

interface SuccessorColumns {
  s_serial: string | null;
  s_identity_kind: IdentityKind;
  s_device_id: string;
  s_environment: string;
  s_profile: string;
  s_profile_version: number;
  s_device_group: string | null;
  s_der: Buffer | null;
  s_not_before: Date;
  s_not_after: Date;
  s_public_key_sha256: Buffer;
  s_csr_sha256: Buffer;
  s_tbs_der: Buffer;
  s_predecessor_serial: string | null;
  s_age_seconds: number;
  s_renewal_window_fraction: number | null;
}

function successorOf(row: SuccessorColumns): CertRow {
  return {
    serial: row.s_serial!,
    identity_kind: row.s_identity_kind,
    device_id: row.s_device_id,
    environment: row.s_environment,
    profile: row.s_profile,
    profile_version: row.s_profile_version,
    device_group: row.s_device_group,
    der: row.s_der,
    not_before: row.s_not_before,
    not_after: row.s_not_after,
    public_key_sha256: row.s_public_key_sha256,
    csr_sha256: row.s_csr_sha256,
    tbs_der: row.s_tbs_der,
    revoked_at: null,
    revocation_reason: null,
    predecessor_serial: row.s_predecessor_serial,
    age_seconds: row.s_age_seconds,
    renewal_window_fraction: row.s_renewal_window_fraction,
  };
}

function toCertificate(row: CertRow): RenewalCertificate {
  return {
    serial: row.serial,
    kind: row.identity_kind,
    deviceId: row.device_id,
    environment: row.environment,
    profile: row.profile,
    profileTerms: profileTermsOf(row.profile, row.current_profile_version ?? null, row.current_profile_document ?? null),
    group: row.device_group ?? undefined,
    der: row.der,
    notBefore: row.not_before,
    notAfter: row.not_after,
    publicKeySha256: row.public_key_sha256,
    revokedAt: row.revoked_at,
    revocationReason: row.revocation_reason,
    predecessorSerial: row.predecessor_serial,
  };
}

function toIntent(row: CertRow): CertificateIntent {
  return {
    serial: row.serial,
    kind: row.identity_kind,
    deviceId: row.device_id,
    environment: row.environment,
    profile: row.profile,
    profileVersion: row.profile_version,
    group: row.device_group ?? undefined,
    notBefore: row.not_before,
    notAfter: row.not_after,
    publicKeySha256: row.public_key_sha256,
    csrSha256: row.csr_sha256,
    tbsDer: row.tbs_der,
    predecessorSerial: row.predecessor_serial ?? undefined,
  };
}

// The unique index on predecessor_serial (003_rotation.sql) is the arbiter: no row back means a successor exists.
const INSERT_INTENT = `
  INSERT INTO certificates
    (serial, device_id, profile, token_id, predecessor_serial, public_key_sha256, csr_sha256, tbs_der, not_before, not_after,
     identity_kind, profile_version, device_group, environment)
  VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
  ON CONFLICT (predecessor_serial) WHERE predecessor_serial IS NOT NULL DO NOTHING
  RETURNING serial`;

// The predecessor, locked, with its successor (if one is visible) and any certificate already holding the CSR's key.
const LOCK_PREDECESSOR = `
  SELECT ${PRED_COLUMNS}, ${SUCCESSOR_COLUMNS},
         (SELECT k.serial FROM certificates k WHERE k.public_key_sha256 = $2 LIMIT 1) AS reused_serial,
         cp.version AS current_profile_version, cp.document AS current_profile_document
    FROM certificates p
    LEFT JOIN certificates s ON s.predecessor_serial = p.serial
    LEFT JOIN LATERAL (SELECT version, document FROM profiles
                        WHERE environment = p.environment AND name = p.profile AND deleted_at IS NULL ORDER BY version DESC LIMIT 1) cp ON true
   WHERE p.serial = $1
     FOR UPDATE OF p`;

const READ_SUCCESSOR = `
  SELECT ${SUCCESSOR_COLUMNS} FROM certificates s WHERE s.predecessor_serial = $1`;

interface PendingRow {
  successor_serial: string;
  predecessor_serial: string;
  device_id: string;
  issued_at: Date;
}

const toPending = (r: PendingRow): PendingSupersession => ({
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

/** What a recorded successor means for a renewal of its predecessor with this CSR. */
function answerForSuccessor(successor: CertRow, input: BeginRenewal): BeginRenewalResult {
  if (!successor.csr_sha256.equals(input.csrSha256)) return { outcome: 'successor-exists', successorSerial: successor.serial };
  if (successor.der) {
    return { outcome: 'replay', certificate: issuedCertificateOf(successor.serial, { ...successor, der: successor.der, renewal_window_fraction: successor.renewal_window_fraction ?? null }) };
  }
  if ((successor.age_seconds ?? 0) < input.inFlightSeconds) return { outcome: 'in-progress' };
  return { outcome: 'resume', intent: toIntent(successor) };
}

export function createPgRenewalStore(pool: pg.Pool): RenewalStore & RotationStore & TokenDeviceLookup {
  return {
    /**
     * Four round trips when a successor is recorded, all parameterised: BEGIN with the shared revocation lock (one
     * fixed statement); one read that locks the predecessor row FOR UPDATE and brings its successor (if any) and any
     * certificate with the CSR's key; the INSERT; COMMIT. Renewals of one certificate run one after another through
     * the row lock. The read's snapshot is taken before it waits for that lock, so it misses a successor that a
     * concurrent renewal committed meanwhile; the INSERT then finds it through the unique index on predecessor_serial
     * (ON CONFLICT DO NOTHING), and one more read, with a fresh snapshot under READ COMMITTED, answers from it.
     * Lock order is the revocation's (advisory lock, then rows), so the two never deadlock.
     */
    async beginRenewal(input: BeginRenewal): Promise<BeginRenewalResult> {
      return inTransaction(pool, 'renewal', async (client) => {
        const locked = await client.query<CertRow & SuccessorColumns & { reused_serial: string | null }>(LOCK_PREDECESSOR, [
          input.predecessorSerial,
          input.publicKeySha256,
        ]);
        const row = locked.rows[0];
        if (!row) return { outcome: 'not-found' };
        const predecessor = toCertificate(row);
        input.authorize(predecessor);
        if (row.revoked_at !== null) return { outcome: 'revoked', reasonCode: row.revocation_reason ?? 0, revokedAt: row.revoked_at };
        if (row.s_serial !== null) return answerForSuccessor(successorOf(row), input);
        if (row.reused_serial !== null) return { outcome: 'key-reused', serial: row.reused_serial };
        const intent = await input.buildIntent(predecessor);
        const inserted = await client.query(INSERT_INTENT, [
          intent.serial, intent.deviceId, intent.profile, row.serial, intent.publicKeySha256, intent.csrSha256, intent.tbsDer,
          intent.notBefore, intent.notAfter, intent.kind, intent.profileVersion, intent.group ?? null, intent.environment,
        ]);
        if (inserted.rowCount === 0) {
          const successor = (await client.query<SuccessorColumns>(READ_SUCCESSOR, [row.serial])).rows[0];
          // The successor that won the index is committed (its writer held the row lock until then), so it is visible.
          if (!successor) throw new Error(`certificate ${row.serial}: successor conflict without a successor row`);
          return answerForSuccessor(successorOf(successor), input);
        }
        return { outcome: 'begun', intent: { ...intent, predecessorSerial: row.serial } };
      });
    },

    /**
     * Idempotent: the first signature stored wins. One statement (its own transaction): the update, the audit row and
     * the NOTIFY that announces the successor to other processes (delivered on commit).
     */
    async complete(serial: string, der: Buffer, requestId?: string) {
      const { rows } = await pool.query<IssuedRow>(
        `WITH upd AS (
           UPDATE certificates SET der = $2, issued_at = now() WHERE serial = $1 AND der IS NULL
           RETURNING serial, device_id, environment, der, not_before, not_after, predecessor_serial, issued_at, profile, profile_version
         ), audit AS (
           INSERT INTO audit_events (action, actor, device_id, serial, request_id, detail)
           SELECT 'certificate.renewed', 'renewal', device_id, serial, $3, jsonb_build_object('predecessorSerial', predecessor_serial) FROM upd
         ), announce AS (
           SELECT pg_notify($4, json_build_object('successorSerial', serial, 'predecessorSerial', predecessor_serial, 'deviceId', device_id,
                                                 'issuedAtMs', floor(extract(epoch FROM issued_at) * 1000))::text)
             FROM upd WHERE predecessor_serial IS NOT NULL
         )
         SELECT ${issuedColumnsOf('upd')} FROM upd WHERE (SELECT count(*) FROM announce) >= 0
         UNION ALL
         SELECT ${issuedColumnsOf('c')} FROM certificates c WHERE c.serial = $1 AND c.der IS NOT NULL AND NOT EXISTS (SELECT 1 FROM upd)`,
        [serial, der, requestId ?? null, RENEWAL_CHANNEL],
      );
      const row = rows[0];
      if (!row) throw new Error(`certificate ${serial} has no intent row`);
      return issuedCertificateOf(serial, row);
    },

    async pendingSupersessions(limit: number): Promise<PendingSupersession[]> {
      const { rows } = await pool.query<PendingRow>(`${PENDING_SELECT} ORDER BY s.issued_at LIMIT $1`, [limit]);
      return rows.map(toPending);
    },

    async dueSupersessions(graceSeconds: number, limit: number): Promise<PendingSupersession[]> {
      const { rows } = await pool.query<PendingRow>(
        `${PENDING_SELECT} AND s.issued_at <= now() - make_interval(secs => $1) ORDER BY s.issued_at LIMIT $2`,
        [graceSeconds, limit],
      );
      return rows.map(toPending);
    },

    async descendants(serial: string): Promise<string[]> {
      const { rows } = await pool.query<{ serial: string }>(
        `WITH RECURSIVE lineage(serial, depth) AS (
                SELECT c.serial, 1 FROM certificates c WHERE c.predecessor_serial = $1
                UNION ALL
                SELECT c.serial, l.depth + 1 FROM certificates c JOIN lineage l ON c.predecessor_serial = l.serial WHERE l.depth < 10000
              )
         SELECT serial FROM lineage ORDER BY depth`,
        [serial],
      );
      return rows.map((r) => r.serial);
    },

    // ───────────── rotation sweep ─────────────

    async renewalCandidates(defaultWindowFraction: number, limit: number): Promise<RenewalCandidate[]> {
      // The window of the profile version written into the certificate, joined on (profile, profile_version).
      const { rows } = await pool.query<{ serial: string; device_id: string; not_before: Date; not_after: Date }>(
        `SELECT c.serial, c.device_id, c.not_before, c.not_after
           FROM certificates c
          WHERE c.der IS NOT NULL AND c.revoked_at IS NULL AND c.not_after > now()
            AND now() >= c.not_after - (c.not_after - c.not_before) * COALESCE(${windowFractionOf('c')}, $1::float8)
            AND NOT EXISTS (SELECT 1 FROM certificates s WHERE s.predecessor_serial = c.serial)
            AND NOT EXISTS (SELECT 1 FROM rotation_hints h WHERE h.serial = c.serial)
          ORDER BY c.not_after
          LIMIT $2`,
        [defaultWindowFraction, limit],
      );
      return rows.map((r) => ({ serial: r.serial, deviceId: r.device_id, notBefore: r.not_before, notAfter: r.not_after }));
    },

    async claimHint(serial: string): Promise<RotationHint | undefined> {
      return inTransaction(pool, 'none', async (client) => {
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
        if (!won) return undefined;
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
        return hint;
      });
    },

    // ───────────── EST simpleenroll: whose token is this ─────────────

    async deviceOfToken(tokenHash: Buffer): Promise<string | undefined> {
      const { rows } = await pool.query<{ device_id: string }>('SELECT device_id FROM bootstrap_tokens WHERE token_hash = $1', [tokenHash]);
      return rows[0]?.device_id;
    },
  };
}

export interface RotationListenerOptions {
  connectionString: string;
  reconnectDelayMs?: number;
  applicationName?: string;
}

const LISTEN_CHANNELS = [ROTATION_HINT_CHANNEL, RENEWAL_CHANNEL];

/**
 * LISTEN for rotation hints and renewals on a dedicated connection (a pooled one would lose its LISTEN on release).
 * NOTIFY is at-most-once: a hint sent while this connection is down is gone. That costs an accelerator, not
 * correctness: devices also renew on their own timer (docs/architecture.md), and lineage catches up from the store.
 */
export function createPgRotationListener(options: RotationListenerOptions): RotationFeed {
  const listener = createPgListener({ ...options, channels: LISTEN_CHANNELS, applicationName: options.applicationName ?? 'enrolld-rotation-listener' });
  return {
    start: (h: RotationFeedHandlers) =>
      listener.start({
        onConnection: (connected, error) => h.onConnection(connected, error),
        onNotification: (channel, payload) => {
          try {
            if (channel === ROTATION_HINT_CHANNEL) {
              const p = JSON.parse(payload) as { serial: string; deviceId: string; notAfterMs: number };
              h.onHint({ serial: p.serial, deviceId: p.deviceId, notAfter: new Date(p.notAfterMs) });
            } else if (channel === RENEWAL_CHANNEL) {
              const p = JSON.parse(payload) as { successorSerial: string; predecessorSerial: string; deviceId: string; issuedAtMs: number };
              h.onRenewal({ successorSerial: p.successorSerial, predecessorSerial: p.predecessorSerial, deviceId: p.deviceId, issuedAt: new Date(p.issuedAtMs) });
            }
          } catch {
            // Only our own statements notify on these channels; a malformed payload is dropped.
          }
        },
      }),
    stop: () => listener.stop(),
  };
}
