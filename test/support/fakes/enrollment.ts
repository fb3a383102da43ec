// In-memory EnrollmentStore, TokenStore and TokenDeviceLookup (core/src/ports.ts, core/src/renewal/ports.ts): the
// same outcomes as db/src/enrollment-store.ts and token-store.ts, checked by test/contract/enrollment.contract.ts.
// The certificate-row helpers are shared with the renewal fake (fakes/renewal.ts), as the tables are in Postgres.
import { randomUUID } from 'node:crypto';
import { DEFAULT_ENVIRONMENT, isCanonicalSerial, REVOCATION_REASONS } from '@enrolld/protocol';
import type { DeviceToken, IdentityKind } from '@enrolld/protocol';
import type { BeginEnrollment, BeginEnrollmentResult, CertificateHistory, CertificateIntent, CreateTokensResult, EnrollmentStore, IssuedCertificate, NewToken, TokenStore } from '@enrolld/core/ports.js';
import type { TokenDeviceLookup } from '@enrolld/core/renewal/ports.js';
import { profileVersionKey, type CertificateRow, type MemoryTables } from './memory-tables.js';

export const issuedCertificate = (row: CertificateRow, tables: MemoryTables): IssuedCertificate => ({
  serial: row.serial,
  deviceId: row.deviceId,
  environment: row.environment,
  der: row.der!,
  notBefore: row.notBefore,
  notAfter: row.notAfter,
  renewalWindowFraction: tables.profileVersions.get(profileVersionKey(row.profile, row.profileVersion))?.renewalWindowFraction,
});

export const intentOf = (row: CertificateRow): CertificateIntent => ({
  serial: row.serial,
  kind: row.kind,
  deviceId: row.deviceId,
  environment: row.environment,
  profile: row.profile,
  profileVersion: row.profileVersion,
  group: row.group ?? undefined,
  notBefore: row.notBefore,
  notAfter: row.notAfter,
  publicKeySha256: row.publicKeySha256,
  csrSha256: row.csrSha256,
  tbsDer: row.tbsDer,
  predecessorSerial: row.predecessorSerial ?? undefined,
});

/** Inserts the intent's certificate row, unsigned. */
export function recordIntent(tables: MemoryTables, intent: CertificateIntent, links: { tokenId: string | null; predecessorSerial: string | null }): void {
  // The certificates table accepts only the canonical serial form (db/migrations/004_canonical_serials.sql).
  if (!isCanonicalSerial(intent.serial)) throw new Error(`serial ${intent.serial} is not canonical`);
  if (tables.certificates.has(intent.serial)) throw new Error(`serial ${intent.serial} exists`);
  // The composite key of 011_environments.sql: a certificate is in its device's environment.
  if (tables.devices.get(intent.deviceId)?.environment !== intent.environment) throw new Error(`${intent.deviceId} is not in environment ${intent.environment}`);
  tables.certificates.set(intent.serial, {
    serial: intent.serial,
    kind: intent.kind,
    deviceId: intent.deviceId,
    environment: intent.environment,
    profile: intent.profile,
    profileVersion: intent.profileVersion,
    group: intent.group ?? null,
    tokenId: links.tokenId,
    predecessorSerial: links.predecessorSerial,
    publicKeySha256: intent.publicKeySha256,
    csrSha256: intent.csrSha256,
    tbsDer: intent.tbsDer,
    der: null,
    notBefore: intent.notBefore,
    notAfter: intent.notAfter,
    createdAt: tables.clock.now(),
    issuedAt: null,
    revokedAt: null,
    revocationReason: null,
    revocationSeq: null,
  });
}

/** Stores the signature; the first one stored for a serial wins. */
export function completeCertificate(tables: MemoryTables, serial: string, der: Buffer): IssuedCertificate {
  const cert = tables.certificates.get(serial);
  if (!cert) throw new Error(`certificate ${serial} has no intent row`);
  if (!cert.der) {
    cert.der = der;
    cert.issuedAt = tables.clock.now();
  }
  return issuedCertificate(cert, tables);
}

export function createMemoryTokenStore(tables: MemoryTables): TokenStore & TokenDeviceLookup {
  return {
    async createTokens(tokens: NewToken[]): Promise<CreateTokensResult> {
      const now = tables.clock.now();
      const first = tokens[0];
      if (!first) return { outcome: 'created' };
      const environment = first.environment ?? DEFAULT_ENVIRONMENT;
      if (tables.environments.get(environment)?.deletedAt !== null) return { outcome: 'unknown-environment' };
      if (tables.profiles.get(first.profile)?.kind !== first.kind) return { outcome: 'unknown-profile' };
      const mismatched = tokens.filter((t) => { const kind = tables.devices.get(t.deviceId)?.kind; return kind !== undefined && kind !== t.kind; });
      if (mismatched.length > 0) return { outcome: 'kind-mismatch', ids: mismatched.map((t) => t.deviceId).sort() };
      const elsewhere = tokens.filter((t) => { const known = tables.devices.get(t.deviceId)?.environment; return known !== undefined && known !== environment; });
      if (elsewhere.length > 0) return { outcome: 'environment-mismatch', ids: elsewhere.map((t) => t.deviceId).sort() };
      for (const t of tokens) {
        if (!tables.devices.has(t.deviceId)) tables.devices.set(t.deviceId, { kind: t.kind, environment, profile: t.profile, group: null, createdAt: now });
        tables.tokens.set(t.tokenHash.toString('hex'), {
          id: randomUUID(), deviceId: t.deviceId, profile: t.profile, group: t.group ?? null, batchId: t.batchId ?? null, expiresAt: t.expiresAt, usedAt: null, csrSha256: null,
        });
      }
      return { outcome: 'created' };
    },
    async identities(ids: string[]): Promise<Map<string, { kind: IdentityKind; environment: string }>> {
      return new Map(ids.flatMap((id) => { const device = tables.devices.get(id); return device ? [[id, { kind: device.kind, environment: device.environment }] as const] : []; }));
    },
    async certificateHistory(deviceIds: string[]): Promise<Map<string, CertificateHistory>> {
      const now = tables.clock.now().getTime();
      const history = new Map<string, CertificateHistory>();
      for (const id of deviceIds) {
        const certificates = [...tables.certificates.values()].filter((c) => c.deviceId === id);
        if (certificates.length === 0) continue;
        const live = certificates.some((c) => c.der && !c.revokedAt && c.notAfter.getTime() > now);
        const newest = Math.max(...certificates.map((c) => c.createdAt.getTime()));
        const compromisedAt = Math.max(...certificates.filter((c) => c.revocationReason === REVOCATION_REASONS.keyCompromise).map((c) => c.revokedAt!.getTime()));
        history.set(id, { live, compromised: compromisedAt >= newest });
      }
      return history;
    },
    async tokensOf(): Promise<DeviceToken[] | undefined> {
      throw new Error('the memory token store keeps no token history; test it against Postgres');
    },
    async deviceOfToken(tokenHash: Buffer): Promise<string | undefined> {
      return tables.tokens.get(tokenHash.toString('hex'))?.deviceId;
    },
  };
}

export function createMemoryEnrollmentStore(tables: MemoryTables): EnrollmentStore {
  return {
    async begin(input: BeginEnrollment): Promise<BeginEnrollmentResult> {
      const token = tables.tokens.get(input.tokenHash.toString('hex'));
      if (!token) return { outcome: 'rejected', reason: 'unknown' };
      if (!token.usedAt && token.expiresAt > tables.clock.now()) {
        // Built before anything is written: a throw leaves the token unspent.
        const device = tables.devices.get(token.deviceId)!;
        const intent = await input.buildIntent({
          tokenId: token.id,
          kind: device.kind,
          deviceId: token.deviceId,
          environment: device.environment,
          profile: token.profile,
          profileTerms: tables.profiles.get(token.profile),
          group: token.group ?? undefined,
        });
        // As the conditional UPDATE in Postgres: only the first request to get here after its intent was built spends it.
        if (!token.usedAt) {
          recordIntent(tables, { ...intent, csrSha256: input.csrSha256 }, { tokenId: token.id, predecessorSerial: intent.predecessorSerial ?? null });
          device.group = intent.group ?? null;
          device.tokenBatch = token.batchId;
          token.usedAt = tables.clock.now();
          token.csrSha256 = input.csrSha256;
          return { outcome: 'begun', intent };
        }
      }
      const now = tables.clock.now();
      if (!token.usedAt) return { outcome: 'rejected', reason: 'expired' };
      if (token.usedAt.getTime() <= now.getTime() - input.retryWindowSeconds * 1000) return { outcome: 'rejected', reason: 'used' };
      if (!token.csrSha256?.equals(input.csrSha256)) return { outcome: 'csr-mismatch', deviceId: token.deviceId };
      const cert = [...tables.certificates.values()].find((c) => c.tokenId === token.id);
      if (!cert) return { outcome: 'rejected', reason: 'used' };
      if (cert.der) return { outcome: 'replay', certificate: issuedCertificate(cert, tables) };
      if (now.getTime() - cert.createdAt.getTime() < input.inFlightSeconds * 1000) return { outcome: 'in-progress' };
      return { outcome: 'resume', intent: intentOf(cert) };
    },

    async complete(serial: string, der: Buffer): Promise<IssuedCertificate> {
      return completeCertificate(tables, serial, der);
    },
  };
}
