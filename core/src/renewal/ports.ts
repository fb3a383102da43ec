// Ports the rotation core needs (docs/architecture.md: declared by the consumer). db/ implements the stores and the feeds;
// jobs/ and mqtt/ drive the use cases through them.
import type { IdentityKind } from '@enrolld/protocol';
import type { CertificateIntent, IssuedCertificate } from '../ports.js';
import type { ProfileTerms } from '../profiles/ports.js';

/** A certificate as the renewal checks see it. */
export interface RenewalCertificate {
  /** Canonical form (@enrolld/protocol serial.ts): lowercase minimal DER content octets, as stored. */
  serial: string;
  kind: IdentityKind;
  deviceId: string;
  environment: string;
  profile: string;
  /** The current version of the certificate's profile (in its environment), when read for a renewal; undefined if it no longer exists. */
  profileTerms?: ProfileTerms | undefined;
  /** The device group recorded with the certificate (and written into it); undefined when it has none. */
  group: string | undefined;
  /** Null while the row is only an intent (never signed, or signing failed). */
  der: Buffer | null;
  notBefore: Date;
  notAfter: Date;
  publicKeySha256: Buffer;
  revokedAt: Date | null;
  /** RFC 5280 §5.3.1 CRLReason code. */
  revocationReason: number | null;
  predecessorSerial: string | null;
}

export type BeginRenewalResult =
  | { outcome: 'begun'; intent: CertificateIntent }
  /** Same predecessor, same CSR, already issued: the lost-response retry gets the same certificate. */
  | { outcome: 'replay'; certificate: IssuedCertificate }
  /** Same predecessor, same CSR, the intent was recorded but never completed (signer or final write failed). */
  | { outcome: 'resume'; intent: CertificateIntent }
  /** Same predecessor, same CSR, another request is signing it right now. */
  | { outcome: 'in-progress' }
  /** The predecessor already has a successor for a different CSR. */
  | { outcome: 'successor-exists'; successorSerial: string }
  /** The CSR's key is already certified (by this or another certificate). */
  | { outcome: 'key-reused'; serial: string }
  /** The predecessor is revoked (authorize normally refuses first; this is the store's own guard). */
  | { outcome: 'revoked'; reasonCode: number; revokedAt: Date }
  | { outcome: 'not-found' };

export interface BeginRenewal {
  predecessorSerial: string;
  csrSha256: Buffer;
  publicKeySha256: Buffer;
  /** A pending intent younger than this belongs to a request still in flight. */
  inFlightSeconds: number;
  /**
   * Called first, with the predecessor row locked: authentication and eligibility against the stored row. Throwing
   * rolls the transaction back and reaches the caller unchanged.
   */
  authorize: (predecessor: RenewalCertificate) => void;
  /** Called when a new successor is to be recorded. */
  buildIntent: (predecessor: RenewalCertificate) => CertificateIntent | Promise<CertificateIntent>;
}

/** A successor whose predecessor is still unrevoked: the predecessor is superseded on first use or after the grace. */
export interface PendingSupersession {
  successorSerial: string;
  predecessorSerial: string;
  deviceId: string;
  /** When the successor was issued. */
  issuedAt: Date;
}

export interface RenewalStore {
  /**
   * Locks the predecessor row and records the successor's intent in one transaction (Boulder order: the row exists
   * before the signature). A unique index on predecessor_serial makes "one successor" a database fact.
   */
  beginRenewal(input: BeginRenewal): Promise<BeginRenewalResult>;
  /** Stores the signed successor; idempotent (the first signature stored for a serial wins). */
  complete(serial: string, der: Buffer, requestId?: string): Promise<IssuedCertificate>;
  /** Successors issued whose predecessor is unrevoked and unexpired. */
  pendingSupersessions(limit: number): Promise<PendingSupersession[]>;
  /** Pending supersessions whose successor was issued at least `graceSeconds` ago. */
  dueSupersessions(graceSeconds: number, limit: number): Promise<PendingSupersession[]>;
  /** The serials issued after `serial` in its lineage (successor, its successor, …). */
  descendants(serial: string): Promise<string[]>;
}

/** A certificate the sweep found inside its renewal window. */
export interface RenewalCandidate {
  serial: string;
  deviceId: string;
  notBefore: Date;
  notAfter: Date;
}

export interface RotationHint {
  serial: string;
  deviceId: string;
  notAfter: Date;
}

export interface RotationStore {
  /**
   * Live certificates (issued, unrevoked, unexpired, without a successor, not hinted yet) that have entered their
   * renewal window, oldest notAfter first. The window is the last `renewalWindowFraction` of the lifetime that the
   * profile version the certificate was issued under sets, or `defaultWindowFraction` where it sets none.
   */
  renewalCandidates(defaultWindowFraction: number, limit: number): Promise<RenewalCandidate[]>;
  /**
   * Records the hint for this serial and queues its notification in one transaction; returns the hint when this
   * call won, undefined when it was sent already (or the certificate is no longer live).
   */
  claimHint(serial: string): Promise<RotationHint | undefined>;
}

/** Hints and renewals as they reach a broker process (Postgres LISTEN in production). */
export interface RotationFeedHandlers {
  onHint(hint: RotationHint): void;
  /** A successor was issued (by any API process): the broker-side lineage learns it without polling. */
  onRenewal(renewal: PendingSupersession): void;
  onConnection(connected: boolean, error?: unknown): void;
}

export interface RotationFeed {
  start(handlers: RotationFeedHandlers): Promise<void>;
  stop(): Promise<void>;
}

/** Looks up which device a bootstrap token belongs to, without spending it (EST simpleenroll user check). */
export interface TokenDeviceLookup {
  deviceOfToken(tokenHash: Buffer): Promise<string | undefined>;
}
