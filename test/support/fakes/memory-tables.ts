// The rows the in-memory store fakes share, shaped like the Postgres tables of db/migrations: a certificate made by
// the enrollment fake is what the revocation fake revokes. Time comes from the injected clock (Postgres uses now()).
import type { AdminRole, IdentityKind } from '@enrolld/protocol';
import type { Clock } from '@enrolld/core/clock.js';
import type { ProfileTerms } from '@enrolld/core/profiles/ports.js';
import type { EnvironmentRecord } from '@enrolld/core/environments/ports.js';
import { BUILTIN_PROFILE_SPECS } from '@enrolld/core/acl/builtin-profiles.js';

export interface TokenRow {
  id: string;
  deviceId: string;
  profile: string;
  group: string | null;
  batchId: string | null;
  expiresAt: Date;
  usedAt: Date | null;
  csrSha256: Buffer | null;
}

export interface CertificateRow {
  serial: string;
  kind: IdentityKind;
  deviceId: string;
  environment: string;
  profile: string;
  profileVersion: number;
  group: string | null;
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

export interface AdminRow {
  role: AdminRole;
  createdAt: Date;
  createdBy: string;
  updatedAt: Date;
  updatedBy: string;
  revokedAt: Date | null;
}

export interface MemoryTables {
  clock: Clock;
  /** environments: `default` from the start, with no chain until one is recorded (as the migration leaves it). */
  environments: Map<string, Omit<EnvironmentRecord, 'issuingCertificatePem' | 'rootCertificatePem'> & { issuingCertificatePem: string | null; rootCertificatePem: string | null }>;
  devices: Map<string, { kind: IdentityKind; environment: string; profile: string; group: string | null; tokenBatch?: string | null; createdAt: Date }>;
  /**
   * The current version of each live profile (profiles); the built-ins at version 1, as the migration stores them. The
   * fakes keep one set of profiles for every environment (Postgres keeps them per environment).
   */
  profiles: Map<string, ProfileTerms>;
  /** Every version ever stored, deleted ones included (profiles rows), by profileVersionKey(). */
  profileVersions: Map<string, ProfileTerms>;
  /** Keyed by the token hash in hex. */
  tokens: Map<string, TokenRow>;
  certificates: Map<string, CertificateRow>;
  /** Serials whose rotation hint was claimed (rotation_hints). */
  rotationHints: Set<string>;
  /** admin_credentials: name → token hash; both are unique. */
  adminCredentials: Map<string, Buffer>;
  /** admins: name → record (db/migrations/012_admins.sql). */
  admins: Map<string, AdminRow>;
  lastRevocationSeq: number;
  lastCrlNumber: bigint;
}

export const profileVersionKey = (name: string, version: number): string => `${name}@${version}`;

export function createMemoryTables(clock: Clock): MemoryTables {
  const builtins = BUILTIN_PROFILE_SPECS.map((spec): ProfileTerms => ({ name: spec.name, version: 1, kind: spec.kind }));
  return {
    clock,
    environments: new Map([
      ['default', { name: 'default', ownRoot: false, issuingCertificatePem: null, rootCertificatePem: null, createdAt: clock.now(), createdBy: 'migration', deletedAt: null }],
    ]),
    devices: new Map(),
    profiles: new Map(builtins.map((terms) => [terms.name, terms])),
    profileVersions: new Map(builtins.map((terms) => [profileVersionKey(terms.name, terms.version), terms])),
    tokens: new Map(),
    certificates: new Map(),
    rotationHints: new Set(),
    adminCredentials: new Map(),
    admins: new Map(),
    lastRevocationSeq: 0,
    lastCrlNumber: 0n,
  };
}
