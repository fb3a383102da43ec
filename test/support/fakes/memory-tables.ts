// The rows the in-memory store fakes share, shaped like the Postgres tables of db/migrations: a certificate made by
// the enrollment fake is what the revocation fake revokes. Time comes from the injected clock (Postgres uses now()).
import type { Clock } from '@enrolld/core/clock.js';

export interface TokenRow {
  id: string;
  deviceId: string;
  profile: string;
  expiresAt: Date;
  usedAt: Date | null;
  csrSha256: Buffer | null;
}

export interface CertificateRow {
  serial: string;
  deviceId: string;
  profile: string;
  tokenId: string | null;
  predecessorSerial: string | null;
  publicKeySha256: Buffer;
  csrSha256: Buffer;
  tbsDer: Buffer;
  der: Buffer | null;
  notBefore: Date;
  notAfter: Date;
  createdAt: Date;
  issuedAt: Date | null;
  revokedAt: Date | null;
  revocationReason: number | null;
  revocationSeq: number | null;
}

export interface MemoryTables {
  clock: Clock;
  devices: Map<string, { profile: string; createdAt: Date }>;
  /** Keyed by the token hash in hex. */
  tokens: Map<string, TokenRow>;
  certificates: Map<string, CertificateRow>;
  /** Serials whose rotation hint was claimed (rotation_hints). */
  rotationHints: Set<string>;
  /** admin_credentials: name → token hash; both are unique. */
  adminCredentials: Map<string, Buffer>;
  lastRevocationSeq: number;
  lastCrlNumber: bigint;
}

export function createMemoryTables(clock: Clock): MemoryTables {
  return {
    clock,
    devices: new Map(),
    tokens: new Map(),
    certificates: new Map(),
    rotationHints: new Set(),
    adminCredentials: new Map(),
    lastRevocationSeq: 0,
    lastCrlNumber: 0n,
  };
}
