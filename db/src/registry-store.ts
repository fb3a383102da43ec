// The admission registry's store and feed (core/src/admission/ports.ts; docs/architecture.md §7): per device the
// current certificate (newest issued, unrevoked, unexpired, by issue seq) and that one's predecessor while unrevoked,
// the issue-seq resync, and one LISTEN connection carrying revocations, CRLs and issuance.
import type pg from 'pg';
import type { IssuedCertificateRecord, RegistryFeed, RegistryFeedHandlers, RegistrySnapshot, RegistryStore } from '@enrolld/core/admission/ports.js';
import { createPgListener } from './pg-listener.js';
import { inTransaction } from './transaction.js';
import { deliverRevocationNotification, REVOCATION_CHANNELS } from './revocation-store.js';

interface RegistryRow {
  serial: string;
  device_id: string;
  issue_seq: string;
  not_after: Date;
  predecessor_serial: string | null;
  revoked: boolean;
}

const REGISTRY_COLUMNS = 'serial, device_id, issue_seq, not_after, predecessor_serial, revoked_at IS NOT NULL AS revoked';

function toRecord(row: RegistryRow): IssuedCertificateRecord {
  return {
    serial: row.serial,
    deviceId: row.device_id,
    seq: Number(row.issue_seq),
    notAfterMs: row.not_after.getTime(),
    predecessorSerial: row.predecessor_serial ?? undefined,
    revoked: row.revoked,
  };
}

// The live certificates ranked per device, newest first (index certificates_device_issue_idx), then the current one
// and the predecessor it names. `$1` restricts to one device; NULL means every device.
const CURRENT_CERTIFICATES = `
  WITH live AS (
    SELECT ${REGISTRY_COLUMNS}, row_number() OVER (PARTITION BY device_id ORDER BY issue_seq DESC) AS rank
      FROM certificates
     WHERE issue_seq IS NOT NULL AND revoked_at IS NULL AND not_after > now() AND ($1::text IS NULL OR device_id = $1)),
  current AS (SELECT * FROM live WHERE rank = 1)
  SELECT serial, device_id, issue_seq, not_after, predecessor_serial, revoked FROM current
  UNION ALL
  SELECT l.serial, l.device_id, l.issue_seq, l.not_after, l.predecessor_serial, l.revoked
    FROM live l JOIN current c ON l.device_id = c.device_id AND l.serial = c.predecessor_serial`;

export function createPgRegistryStore(pool: pg.Pool): RegistryStore {
  return {
    async registrySnapshot(): Promise<RegistrySnapshot> {
      // One statement, one MVCC snapshot: the seq and the certificates agree. It grows with the fleet: a bulk bound.
      const { rows } = await inTransaction(
        pool,
        'none',
        (client) =>
          client.query<RegistryRow & { last_seq: string | null }>(
            `WITH last AS (SELECT max(issue_seq) AS last_seq FROM certificates), registry AS (${CURRENT_CERTIFICATES})
             SELECT registry.*, last.last_seq FROM last LEFT JOIN registry ON true`,
            [null],
          ),
        { bulk: true },
      );
      const lastSeq = Number(rows[0]?.last_seq ?? 0);
      return { certificates: rows.filter((r) => r.serial !== null).map(toRecord), lastSeq };
    },

    async issuedSince(seq: number, limit: number): Promise<IssuedCertificateRecord[]> {
      const { rows } = await pool.query<RegistryRow>(
        `SELECT ${REGISTRY_COLUMNS} FROM certificates WHERE issue_seq > $1 ORDER BY issue_seq LIMIT $2`,
        [seq, limit],
      );
      return rows.map(toRecord);
    },

    async currentCertificatesOf(deviceId: string): Promise<IssuedCertificateRecord[]> {
      const { rows } = await pool.query<RegistryRow>(CURRENT_CERTIFICATES, [deviceId]);
      return rows.map(toRecord);
    },
  };
}

export interface RegistryListenerOptions {
  connectionString: string;
  /** Delay before reconnecting after the LISTEN connection dropped. */
  reconnectDelayMs?: number;
  applicationName?: string;
}

const ISSUED_CHANNEL = 'enrolld_certificate';

/**
 * Revocations, CRLs and issuance on one dedicated LISTEN connection. NOTIFY is delivered on commit, in commit order,
 * at most once: after onConnection(false) the consumer resyncs by revocation seq and issue seq once it is back.
 */
export function createPgRegistryListener(options: RegistryListenerOptions): RegistryFeed {
  const listener = createPgListener({
    ...options,
    channels: [...REVOCATION_CHANNELS, ISSUED_CHANNEL],
    applicationName: options.applicationName ?? 'enrolld-registry-listener',
  });
  return {
    start: (h: RegistryFeedHandlers) =>
      listener.start({
        onConnection: (connected, error) => h.onConnection(connected, error),
        onNotification: (channel, payload) => {
          if (channel !== ISSUED_CHANNEL) return deliverRevocationNotification(channel, payload, h);
          try {
            // The payload of enrolld_notify_issued (005_certificate_registry.sql).
            const p = JSON.parse(payload) as { serial: string; deviceId: string; seq: number | string; notAfterMs: number | string; predecessorSerial: string | null };
            h.onIssued({ serial: p.serial, deviceId: p.deviceId, seq: Number(p.seq), notAfterMs: Number(p.notAfterMs), predecessorSerial: p.predecessorSerial ?? undefined });
          } catch {
            // A malformed payload cannot come from our trigger; the issue-seq resync repairs whatever it was.
          }
        },
      }),
    stop: () => listener.stop(),
  };
}
