// Ports of the broker's admission registry (docs/architecture.md §6, §7): which certificates of each device may
// connect. db/ implements the store and the NOTIFY feed; core/events holds the in-process feed of `enrolld up`.
import type { RevocationFeedHandlers } from '../revocation/ports.js';

/** A signed certificate that was stored, as every broker learns it. */
export interface IssuedCertificateEvent {
  /** Canonical form (@enrolld/protocol serial.ts). */
  serial: string;
  deviceId: string;
  /**
   * Monotonic issue sequence in commit order (db/migrations/005_certificate_registry.sql). Absent on the in-process
   * path, which hears the certificate before its number reaches it; the NOTIFY or the resync brings the number.
   */
  seq?: number | undefined;
  notAfterMs: number;
  /** The certificate it renews (lineage, docs/architecture.md §8); absent for an enrollment. */
  predecessorSerial?: string | undefined;
}

/** A row of the issue sequence, as a resync reads it. */
export interface IssuedCertificateRecord extends IssuedCertificateEvent {
  seq: number;
  /** Revoked since: the revocation state refuses it; the registry must not make it current. */
  revoked: boolean;
}

export interface RegistrySnapshot {
  /** Per device: its current certificate (newest issued, unrevoked, unexpired) and that one's predecessor while unrevoked. */
  certificates: IssuedCertificateRecord[];
  /** Highest issue seq committed, 0 when there is none. */
  lastSeq: number;
}

export interface RegistryStore {
  /** What a broker loads before it admits anyone. */
  registrySnapshot(): Promise<RegistrySnapshot>;
  /** Certificates with issue seq > `seq`, in seq order: the resync path when a notification was lost. */
  issuedSince(seq: number, limit: number): Promise<IssuedCertificateRecord[]>;
  /** One device's current certificate and its live predecessor (one indexed query): the lookup of an unknown serial. */
  currentCertificatesOf(deviceId: string): Promise<IssuedCertificateRecord[]>;
}

/** The revocation feed's events plus issuance, on one channel (one LISTEN connection). */
export interface RegistryFeedHandlers extends RevocationFeedHandlers {
  onIssued(event: IssuedCertificateEvent): void;
}

export interface RegistryFeed {
  start(handlers: RegistryFeedHandlers): Promise<void>;
  stop(): Promise<void>;
}

/** Told after a signed certificate is stored; an in-process broker admits it without waiting for NOTIFY. */
export interface IssuancePublisher {
  issued(event: IssuedCertificateEvent): void;
}
