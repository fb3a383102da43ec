// In-memory RevocationStore (core/src/revocation/ports.ts) over the shared tables: the same outcomes as
// db/src/revocation-store.ts, checked by test/contract/revocation.contract.ts.
import { DEFAULT_ENVIRONMENT } from '@enrolld/protocol';
import type {
  CrlBuildInput,
  CrlRebuildOutcome,
  RevocationCommand,
  RevocationOutcome,
  RevocationStore,
  RevokedCertificate,
  StoredCrl,
} from '@enrolld/core/revocation/ports.js';
import type { CertificateRow, MemoryTables } from './memory-tables.js';

const ONE_DAY_MS = 24 * 3600_000;

const record = (row: CertificateRow): RevokedCertificate => ({
  serial: row.serial,
  deviceId: row.deviceId,
  environment: row.environment,
  seq: row.revocationSeq!,
  reasonCode: row.revocationReason!,
  revokedAt: row.revokedAt!,
});

/** The kinds a revoke by device id or serial may reach, as db/src/revocation-store.ts. */
const inScope = (kind: string, command: RevocationCommand) => ((command.identities ?? 'fleet') === 'admins' ? kind === 'admin' : kind !== 'admin');

export function createMemoryRevocationStore(tables: MemoryTables): RevocationStore {
  /** The stored CRLs of each environment, oldest first; numbers come from one sequence, as crl_number_seq does. */
  const crls = new Map<string, StoredCrl[]>();
  /** When each CRL's rebuild started (the `created_at` of the crls table). */
  const builtAtOf = new WeakMap<StoredCrl, number>();
  const crlsOf = (environment: string) => crls.get(environment) ?? crls.set(environment, []).get(environment)!;

  function revoke(rows: CertificateRow[], command: RevocationCommand): RevokedCertificate[] {
    const now = tables.clock.now();
    for (const row of rows) {
      row.revokedAt = now;
      row.revocationReason = command.reasonCode;
      row.revocationSeq = ++tables.lastRevocationSeq;
    }
    return rows.map(record);
  }

  const revokedRows = () => [...tables.certificates.values()].filter((c) => c.revocationSeq !== null).sort((a, b) => a.revocationSeq! - b.revocationSeq!);

  return {
    async revokeDevice(deviceId, command): Promise<RevocationOutcome> {
      const device = tables.devices.get(deviceId);
      if (!device || !inScope(device.kind, command)) return { outcome: 'not-found' };
      const now = tables.clock.now();
      const live = [...tables.certificates.values()].filter((c) => c.deviceId === deviceId && !c.revokedAt && c.notAfter > now);
      const revoked = revoke(live, command);
      return revoked.length === 0 ? { outcome: 'already-revoked', deviceId, revoked: [] } : { outcome: 'revoked', deviceId, revoked };
    },

    async revokeCertificate(serial, command): Promise<RevocationOutcome> {
      const cert = tables.certificates.get(serial);
      if (!cert || !inScope(cert.kind, command)) return { outcome: 'not-found' };
      // An expired certificate is revoked too when named by serial.
      const revoked = cert.revokedAt ? [] : revoke([cert], command);
      return revoked.length === 0 ? { outcome: 'already-revoked', deviceId: cert.deviceId, revoked: [] } : { outcome: 'revoked', deviceId: cert.deviceId, revoked };
    },

    async revokeCertificates(serials, command) {
      const unrevoked = serials.map((s) => tables.certificates.get(s)).filter((c): c is CertificateRow => c !== undefined && !c.revokedAt);
      return revoke([...new Set(unrevoked)], command);
    },

    async revokedSince(seq, limit = 10_000) {
      return revokedRows().filter((c) => c.revocationSeq! > seq).slice(0, limit).map(record);
    },

    async snapshot() {
      const horizon = tables.clock.now().getTime() - ONE_DAY_MS;
      return { revoked: revokedRows().filter((c) => c.notAfter.getTime() > horizon).map(record), lastSeq: tables.lastRevocationSeq };
    },

    async lastSeq(environment = DEFAULT_ENVIRONMENT) {
      return revokedRows().filter((c) => c.environment === environment).at(-1)?.revocationSeq ?? 0;
    },

    async rebuildCrlWhenDue(build, validity, environment, rule): Promise<CrlRebuildOutcome> {
      // As db/src/revocation-store.ts, on the tables' clock (one process: no lock needed between the read and the build).
      const now = tables.clock.now().getTime();
      const latest = crlsOf(environment).at(-1);
      const builtAt = latest ? builtAtOf.get(latest) : undefined;
      if (latest && builtAt !== undefined) {
        const lastSeq = revokedRows().filter((c) => c.environment === environment).at(-1)?.revocationSeq ?? 0;
        if (latest.coversSeq >= lastSeq && now < builtAt + rule.currentForMs && now < latest.nextUpdate.getTime()) return { outcome: 'current', crl: latest };
        if (now >= builtAt && now < builtAt + rule.minIntervalMs) return { outcome: 'not-due', retryInMs: builtAt + rule.minIntervalMs - now };
      }
      return { outcome: 'built', crl: await this.regenerateCrl(build, validity, environment) };
    },

    async regenerateCrl(build: (input: CrlBuildInput) => Buffer | Promise<Buffer>, validity, environment = DEFAULT_ENVIRONMENT) {
      const startedAt = tables.clock.now().getTime();
      // RFC 5280 §3.3, as db/src/revocation-store.ts: listed until one CRL issued at or past notAfter has listed it.
      const previous = crlsOf(environment).at(-1);
      const revoked = revokedRows().filter((c) => c.environment === environment);
      const entries = revoked
        .filter((c) => !previous || c.revocationSeq! > previous.coversSeq || c.notAfter >= previous.thisUpdate)
        .map((c) => ({ serial: c.serial, revokedAt: c.revokedAt!, reasonCode: c.revocationReason! }));
      const crlNumber = ++tables.lastCrlNumber;
      const coversSeq = revoked.at(-1)?.revocationSeq ?? 0;
      const der = await build({ entries, crlNumber, coversSeq });
      const crl = { crlNumber, der, thisUpdate: validity.thisUpdate, nextUpdate: validity.nextUpdate, coversSeq };
      crlsOf(environment).push(crl);
      builtAtOf.set(crl, startedAt);
      return crl;
    },

    async latestCrl(environment = DEFAULT_ENVIRONMENT) {
      return crlsOf(environment).at(-1);
    },
  };
}
