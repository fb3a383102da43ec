// The audit trail (docs/architecture.md §9a): every CA and admin action is a row of a hash chain in the store. The store
// chains rows itself on commit (db/migrations/007_fleet_admin.sql), so writers only append.

export interface AuditEvent {
  /** Position in the chain, gapless from 1, in commit order. */
  seq: number;
  id: number;
  at: Date;
  action: string;
  actor: string;
  deviceId: string | null;
  serial: string | null;
  requestId: string | null;
  detail: Record<string, unknown>;
  /** sha256(previous row's hash || this row's content), hex. */
  hash: string;
}

export interface AuditQuery {
  /** Newest first: rows with a chain seq below this one (keyset paging). */
  before?: number | undefined;
  limit: number;
  action?: string | undefined;
  actor?: string | undefined;
  deviceId?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
}

/** Where the chain first breaks, and how. */
export interface AuditBreak {
  /**
   * altered: the row's content no longer matches its hash; relinked: the row is intact but does not follow the row
   * before it (a row was inserted, or the one before it was replaced); deleted: chain seqs are missing; outside: a row
   * was written without being chained (its trigger disabled).
   */
  kind: 'altered' | 'relinked' | 'deleted' | 'outside';
  /** The audit_events id of the row named; for `deleted`, the last intact row before the gap (null when the gap opens the chain). */
  id: number | null;
  /** Its chain seq; for `deleted`, the first missing seq. */
  seq: number | null;
  message: string;
}

export interface AuditVerification {
  ok: boolean;
  /** Rows walked. */
  rows: number;
  /** The newest row: record its hash elsewhere to detect a truncated tail, which the table alone cannot show. */
  head: { seq: number; hash: string } | null;
  firstBreak: AuditBreak | null;
}

export interface AuditEntry {
  action: string;
  actor: string;
  deviceId?: string | undefined;
  serial?: string | undefined;
  requestId?: string | undefined;
  detail?: Record<string, unknown> | undefined;
}

export interface AuditTrail {
  append(entry: AuditEntry): Promise<void>;
  list(query: AuditQuery): Promise<AuditEvent[]>;
  /** Walks the whole chain in seq order and reports the first break. */
  verify(): Promise<AuditVerification>;
}
