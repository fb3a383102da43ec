// In-memory RevocationStore (core/src/revocation/ports.ts) over the shared tables: the same outcomes as
// db/src/revocation-store.ts, checked by test/contract/revocation.contract.ts.
import type {
  CrlBuildInput,
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
  seq: row.revocationSeq!,
  reasonCode: row.revocationReason!,
  revokedAt: row.revokedAt!,
});

/** The kinds a revoke by device id or serial may reach, as db/src/revocation-store.ts. */
const inScope = (kind: string, command: RevocationCommand) => ((command.identities ?? 'fleet') === 'admins' ? kind === 'admin' : kind !== 'admin');

export function createMemoryRevocationStore(tables: MemoryTables): RevocationStore {
  const crls: StoredCrl[] = [];

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

    async lastSeq() {
      return tables.lastRevocationSeq;
    },

    async regenerateCrl(build: (input: CrlBuildInput) => Buffer | Promise<Buffer>, validity) {
      // RFC 5280 §3.3, as db/src/revocation-store.ts: listed until one CRL issued at or past notAfter has listed it.
      const previous = crls.at(-1);
      const entries = revokedRows()
        .filter((c) => !previous || c.revocationSeq! > previous.coversSeq || c.notAfter >= previous.thisUpdate)
        .map((c) => ({ serial: c.serial, revokedAt: c.revokedAt!, reasonCode: c.revocationReason! }));
      const crlNumber = ++tables.lastCrlNumber;
      const coversSeq = tables.lastRevocationSeq;
      const der = await build({ entries, crlNumber, coversSeq });
      const crl = { crlNumber, der, thisUpdate: validity.thisUpdate, nextUpdate: validity.nextUpdate, coversSeq };
      crls.push(crl);
      return crl;
    },

    async latestCrl() {
      return crls.at(-1);
    },
  };
}
