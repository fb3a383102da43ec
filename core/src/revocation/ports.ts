// Ports the revocation core needs (docs/architecture.md: declared by the consumer). db/ implements the store and the feed;
// the CA module implements the signer; mqtt/ consumes the state.
import type { CrlSpec } from '../ca/types.js';

/** One revoked certificate, as every broker learns it. */
export interface RevokedCertificate {
  /** Canonical form (@enrolld/protocol serial.ts), as stored: compare as a plain string. */
  serial: string;
  deviceId: string;
  /** The environment whose issuing CA signed it, and whose CRL lists it. */
  environment: string;
  /** Monotonic revocation sequence, handed out in commit order (db/migrations/002_revocation.sql). */
  seq: number;
  /** RFC 5280 §5.3.1 CRLReason code. */
  reasonCode: number;
  revokedAt: Date;
}

export interface RevocationCommand {
  /** RFC 5280 §5.3.1 CRLReason code. */
  reasonCode: number;
  /** Who asked: an admin credential name, "cli:<user>", "rotation". Goes to the audit log. */
  actor: string;
  requestId?: string | undefined;
  /** The admin's words, kept in the audit rows. */
  comment?: string | undefined;
  /**
   * Which identities a revoke by device id or serial may reach: `fleet` (devices and services, the default) or
   * `admins`. Another kind is not found: the fleet routes never revoke an admin, `enrolld admin revoke` only admins.
   */
  identities?: RevocationScope | undefined;
}

export type RevocationScope = 'fleet' | 'admins';

export type RevocationOutcome =
  /** At least one certificate went from valid to revoked in this call. */
  | { outcome: 'revoked'; deviceId: string; revoked: RevokedCertificate[] }
  /** Nothing left to revoke: revoking twice is a no-op, not an error (an idempotent admin command). */
  | { outcome: 'already-revoked'; deviceId: string; revoked: [] }
  | { outcome: 'not-found' };

export interface StoredCrl {
  crlNumber: bigint;
  der: Buffer;
  thisUpdate: Date;
  nextUpdate: Date;
  /**
   * Highest revocation seq taken into account: every revocation up to it is listed, or was left out because it had
   * already appeared on a CRL issued after its certificate's notAfter (RFC 5280 §3.3).
   */
  coversSeq: number;
}

export interface CrlBuildInput {
  entries: CrlSpec['entries'];
  crlNumber: bigint;
  coversSeq: number;
}

export interface RevocationSnapshot {
  /** Revoked certificates that can still matter (not expired). */
  revoked: RevokedCertificate[];
  /** Highest revocation seq committed, 0 when there is none. */
  lastSeq: number;
}

export interface RevocationStore {
  /** Revokes every unexpired, unrevoked certificate of the device, with an audit row each, in one transaction. */
  revokeDevice(deviceId: string, command: RevocationCommand): Promise<RevocationOutcome>;
  /** Revokes one certificate by its canonical serial (the edge canonicalised what the admin typed). */
  revokeCertificate(serial: string, command: RevocationCommand): Promise<RevocationOutcome>;
  /**
   * Revokes the unrevoked certificates among `serials` (canonical), with their audit rows, in one short statement; unknown
   * and already revoked serials are skipped. Returns those this call revoked, in seq order.
   */
  revokeCertificates(serials: string[], command: RevocationCommand): Promise<RevokedCertificate[]>;
  /** Revocations with seq > `seq`, in seq order: the resync path when a notification was lost. */
  revokedSince(seq: number, limit?: number): Promise<RevokedCertificate[]>;
  /** What a broker loads at start before it admits anyone. */
  snapshot(): Promise<RevocationSnapshot>;
  /** The highest revocation seq of one environment's certificates (default `default`), 0 when there is none. */
  lastSeq(environment?: string): Promise<number>;
  /**
   * Signs and stores a new CRL of one environment (default `default`) under a lock, so CRL numbers rise in the same
   * order as the entries they cover. `build` gets the entries (that environment's revocations) and the number and
   * returns the signed DER. An entry stays until it has appeared on one CRL whose thisUpdate is at or past its
   * certificate's notAfter, and is dropped from the CRLs after that (RFC 5280 §3.3).
   */
  regenerateCrl(build: (input: CrlBuildInput) => Buffer | Promise<Buffer>, validity: { thisUpdate: Date; nextUpdate: Date }, environment?: string): Promise<StoredCrl>;
  /**
   * The single-flight rebuild of API replicas over one database (docs/architecture.md §7): under a lock per environment,
   * and on the database's clock, decides whether a rebuild is due and builds only then. The newest CRL is `current`
   * when it covers every revocation of the environment and was built less than `currentForMs` ago; otherwise a rebuild
   * is `not-due` until `minIntervalMs` after the newest CRL was built (by any process), and `built` when it is due.
   */
  rebuildCrlWhenDue(
    build: (input: CrlBuildInput) => Buffer | Promise<Buffer>,
    validity: { thisUpdate: Date; nextUpdate: Date },
    environment: string,
    rule: CrlRebuildRule,
  ): Promise<CrlRebuildOutcome>;
  /** The newest CRL of one environment (default `default`). */
  latestCrl(environment?: string): Promise<StoredCrl | undefined>;
}

export interface CrlRebuildRule {
  /** Rebuilds of one environment start at least this far apart across every process (CRL_MIN_INTERVAL). */
  minIntervalMs: number;
  /** A CRL that covers every revocation is kept while younger than this (half its validity). */
  currentForMs: number;
}

export type CrlRebuildOutcome =
  | { outcome: 'built'; crl: StoredCrl }
  | { outcome: 'current'; crl: StoredCrl }
  /** Another process built this environment's CRL less than the interval ago: ask again in `retryInMs`. */
  | { outcome: 'not-due'; retryInMs: number };

/** A revocation as it arrives on the fan-out channel (Postgres NOTIFY); `atMs` is the commit-time stamp. */
export interface RevocationEvent {
  serial: string;
  deviceId: string;
  seq: number;
  reasonCode: number;
  atMs: number;
}

export interface RevocationFeedHandlers {
  onRevocation(event: RevocationEvent): void;
  /** A new CRL was stored; an in-process feed hands over the CRL itself, so no store round trip is needed. */
  onCrl(crlNumber: bigint, crl?: StoredCrl): void;
  /** The channel came up (true) or was lost (false); after a loss, events may have been missed until the next resync. */
  onConnection(connected: boolean, error?: unknown): void;
}

export interface RevocationFeed {
  start(handlers: RevocationFeedHandlers): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The part of IssuingCa the revocation use case needs (types.ts), told whose CRL it signs (a CRL per issuing CA); a
 * Promise is accepted for signers that are async. One IssuingCa is a signer for an installation of one environment.
 */
export interface CrlSigner {
  signCrl(spec: CrlSpec, environment: string): Buffer | Promise<Buffer>;
}

/**
 * In-process brokers act on this without waiting for NOTIFY. Called right after each commit with the certificates it
 * revoked and no CRL, and after each coalesced CRL rebuild with no certificates and the new CRL (docs/architecture.md §7).
 */
export interface RevocationPublisher {
  revoked(revoked: RevokedCertificate[], crl: StoredCrl | undefined): void;
}

/** What a bulk revocation takes (the wire selector, dates parsed): unrevoked certificates matching every field given. */
export interface BulkSelector {
  environment?: string | undefined;
  prefix?: string | undefined;
  profile?: string | undefined;
  issuedBefore?: Date | undefined;
  issuedAfter?: Date | undefined;
  serials?: string[] | undefined;
  status?: 'active' | 'pending' | 'expired' | undefined;
  /** The devices whose last enrollment used a token of this batch. */
  tokenBatch?: string | undefined;
}

export interface BulkTarget {
  position: number;
  deviceId: string;
  serial: string;
}

export interface BulkRevocationJob {
  id: string;
  status: 'queued' | 'running' | 'done' | 'failed';
  selector: BulkSelector;
  reason: string;
  actor: string;
  total: number;
  done: number;
  revoked: number;
  error: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

export interface BulkRevocationStore {
  /** How many certificates the selector takes now, and the first `sampleSize` of them. */
  preview(selector: BulkSelector, sampleSize: number): Promise<{ count: number; sample: BulkTarget[] }>;
  /** Records the job and freezes its target list (the selector resolved once), with an audit row, in one transaction. */
  create(job: { id: string; selector: BulkSelector; reason: string; actor: string; requestId?: string | undefined }): Promise<BulkRevocationJob>;
  get(id: string): Promise<BulkRevocationJob | undefined>;
  list(limit: number): Promise<BulkRevocationJob[]>;
  /** Jobs not finished (queued or running), to enqueue again after a restart. */
  unfinished(): Promise<string[]>;
  /** The next targets not processed yet, in position order. */
  pending(id: string, limit: number): Promise<BulkTarget[]>;
  /**
   * Marks targets processed and recounts done, and revoked from the audit rows carrying `requestId` (exact when a run
   * repeats after a crash).
   */
  markProcessed(id: string, positions: number[], requestId: string): Promise<void>;
  setStatus(id: string, status: BulkRevocationJob['status'], error?: string): Promise<void>;
}
