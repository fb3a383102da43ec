// Ports declared by core, the consumer (docs/architecture.md: ports belong to the code that uses them); db/ and jobs/
// implement them. Shapes that also travel on the wire (device summaries) are protocol's and only named here.
import type { CertificateStatus, DeviceDetail, DeviceSummary, DeviceToken, IdentityKind, TokenIssue } from '@enrolld/protocol';
import type { ProfileTerms } from './profiles/ports.js';

export interface NewToken {
  kind: IdentityKind;
  deviceId: string;
  /** The environment the identity enrolls in (absent: `default`); one environment per batch. */
  environment?: string | undefined;
  tokenHash: Buffer;
  expiresAt: Date;
  profile: string;
  /** The device group the certificate it enrolls carries (the ACL's `{group}`); absent: none. */
  group?: string | undefined;
  /** Recorded with the token (default `new`); `after-compromise` marks the enrollment it leads to. */
  issuedAs?: TokenIssue;
  /** The batch of the request that made it (a UUID); the device it enrolls records it. */
  batchId?: string | undefined;
}

/** What a device's certificates say about making it a new token (ids with no certificate are absent). */
export interface CertificateHistory {
  /** It has an issued certificate that is neither revoked nor expired. */
  live: boolean;
  /** Its newest certificates were revoked for keyCompromise (no certificate issued since). */
  compromised: boolean;
}

export interface TokenGrant {
  tokenId: string;
  /** The kind of the identity's record. */
  kind: IdentityKind;
  deviceId: string;
  /** The identity's environment: its issuing CA signs the certificate. */
  environment: string;
  profile: string;
  /** The current version of the token's profile; undefined when it no longer exists. */
  profileTerms: ProfileTerms | undefined;
  /** The token's device group; undefined when it names none. */
  group: string | undefined;
}

/** The certificate as recorded before it is signed (Boulder issuance order). */
export interface CertificateIntent {
  serial: string;
  kind: IdentityKind;
  deviceId: string;
  /** Whose issuing CA signs it: the identity's environment. */
  environment: string;
  profile: string;
  profileVersion: number;
  /** The device group written into the certificate's enrolldProfile extension; undefined when it has none. */
  group?: string | undefined;
  notBefore: Date;
  notAfter: Date;
  publicKeySha256: Buffer;
  csrSha256: Buffer;
  tbsDer: Buffer;
  predecessorSerial?: string | undefined;
}

export interface IssuedCertificate {
  serial: string;
  deviceId: string;
  environment: string;
  der: Buffer;
  notBefore: Date;
  notAfter: Date;
  /** The renewalWindowFraction of the profile version the certificate was issued under; undefined when it sets none. */
  renewalWindowFraction: number | undefined;
}

export type TokenRejection = 'unknown' | 'used' | 'expired';

export type BeginEnrollmentResult =
  | { outcome: 'begun'; intent: CertificateIntent }
  /** Same token, same CSR, already issued: answer with the stored certificate. */
  | { outcome: 'replay'; certificate: IssuedCertificate }
  /** Same token, same CSR, intent recorded but never completed (the signer or the final write failed). */
  | { outcome: 'resume'; intent: CertificateIntent }
  /** Same token, same CSR, another request is signing it right now. */
  | { outcome: 'in-progress' }
  /** The token was spent on a different CSR. */
  | { outcome: 'csr-mismatch'; deviceId: string }
  | { outcome: 'rejected'; reason: TokenRejection };

export interface BeginEnrollment {
  tokenHash: Buffer;
  csrSha256: Buffer;
  /** A spent token answers retries with the same CSR for this long; after that it is just "used". */
  retryWindowSeconds: number;
  /** A pending intent younger than this belongs to a request still in flight. */
  inFlightSeconds: number;
  /** Called once the token is known to be good, before it is spent: a throw leaves it unspent. */
  buildIntent: (grant: TokenGrant) => CertificateIntent | Promise<CertificateIntent>;
}

export interface EnrollmentStore {
  /** Consumes the token and records the intent in one transaction (UPDATE … WHERE used_at IS NULL RETURNING). */
  begin(input: BeginEnrollment): Promise<BeginEnrollmentResult>;
  /**
   * Stores the signed certificate; idempotent, returns what is stored if it was completed already. `actor` names who
   * asked in the audit row: the admin who made a service or an admin certificate, `enrollment` for a device's own request.
   */
  complete(serial: string, der: Buffer, requestId?: string, actor?: string): Promise<IssuedCertificate>;
}

export type CreateTokensResult =
  | { outcome: 'created' }
  /** Identities whose record has another kind: a device never becomes a service, nor the other way round. */
  | { outcome: 'kind-mismatch'; ids: string[] }
  /** Identities recorded in another environment: an identity keeps the environment of its first token. */
  | { outcome: 'environment-mismatch'; ids: string[] }
  /** The profile was deleted meanwhile. */
  | { outcome: 'unknown-profile' }
  /** The environment was deleted meanwhile. */
  | { outcome: 'unknown-environment' };

export interface TokenStore {
  /** Creates identity rows as needed and the tokens, all or nothing, while the tokens' profile is live. */
  createTokens(tokens: NewToken[], actor: string): Promise<CreateTokensResult>;
  /** The certificate history of those ids that have certificates. */
  certificateHistory(deviceIds: string[]): Promise<Map<string, CertificateHistory>>;
  /** The kind and environment of those ids that have a record. */
  identities(ids: string[]): Promise<Map<string, { kind: IdentityKind; environment: string }>>;
  /** Every token of a device, newest first; undefined for an unknown device. */
  tokensOf(deviceId: string): Promise<DeviceToken[] | undefined>;
}

export interface AdminCredentialStore {
  findByHash(tokenHash: Buffer): Promise<{ name: string } | undefined>;
}

export interface DeviceQuery {
  limit: number;
  /** Only identities of this environment. */
  environment?: string | undefined;
  after?: string | undefined;
  status?: CertificateStatus | undefined;
  prefix?: string | undefined;
}

export interface DeviceStore {
  list(query: DeviceQuery): Promise<DeviceSummary[]>;
  get(deviceId: string): Promise<DeviceDetail | undefined>;
}
