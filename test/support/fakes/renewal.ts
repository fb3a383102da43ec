// In-memory RenewalStore and RotationStore (core/src/renewal/ports.ts) over the shared tables: the same outcomes as
// db/src/renewal-store.ts, checked by test/contract/renewal.contract.ts. One successor per certificate is what the
// unique index on predecessor_serial makes it in Postgres (db/migrations/003_rotation.sql); here the successor is
// looked up again after the intent was built (an await), right before it is recorded, as the index would refuse it.
import type { IssuedCertificate } from '@enrolld/core/ports.js';
import type {
  BeginRenewal,
  BeginRenewalResult,
  PendingSupersession,
  RenewalCandidate,
  RenewalCertificate,
  RenewalStore,
  RotationHint,
  RotationStore,
} from '@enrolld/core/renewal/ports.js';
import { completeCertificate, intentOf, issuedCertificate, recordIntent } from './enrollment.js';
import { profileVersionKey, type CertificateRow, type MemoryTables } from './memory-tables.js';

const asRenewalCertificate = (row: CertificateRow, tables: MemoryTables): RenewalCertificate => ({
  serial: row.serial,
  kind: row.kind,
  deviceId: row.deviceId,
  environment: row.environment,
  profileTerms: tables.profiles.get(row.profile),
  profile: row.profile,
  group: row.group ?? undefined,
  der: row.der,
  notBefore: row.notBefore,
  notAfter: row.notAfter,
  publicKeySha256: row.publicKeySha256,
  revokedAt: row.revokedAt,
  revocationReason: row.revocationReason,
  predecessorSerial: row.predecessorSerial,
});

export function createMemoryRenewalStore(tables: MemoryTables): RenewalStore & RotationStore {
  const rows = () => [...tables.certificates.values()];
  const successorOf = (serial: string) => rows().find((c) => c.predecessorSerial === serial);

  /** Issued, unrevoked, unexpired and not renewed yet. */
  const isLive = (cert: CertificateRow, now: Date) => cert.der !== null && !cert.revokedAt && cert.notAfter > now && !successorOf(cert.serial);

  function answerForSuccessor(successor: CertificateRow, input: BeginRenewal): BeginRenewalResult {
    if (!successor.csrSha256.equals(input.csrSha256)) return { outcome: 'successor-exists', successorSerial: successor.serial };
    if (successor.der) return { outcome: 'replay', certificate: issuedCertificate(successor, tables) };
    if (tables.clock.now().getTime() - successor.createdAt.getTime() < input.inFlightSeconds * 1000) return { outcome: 'in-progress' };
    return { outcome: 'resume', intent: intentOf(successor) };
  }

  /** Successors issued and live whose predecessor is still unrevoked and unexpired, oldest issuance first. */
  function pending(now: Date): PendingSupersession[] {
    return rows()
      .filter((s) => s.predecessorSerial !== null && s.der !== null && !s.revokedAt)
      .filter((s) => {
        const p = tables.certificates.get(s.predecessorSerial!);
        return p !== undefined && !p.revokedAt && p.notAfter > now;
      })
      .sort((a, b) => a.issuedAt!.getTime() - b.issuedAt!.getTime())
      .map((s) => ({ successorSerial: s.serial, predecessorSerial: s.predecessorSerial!, deviceId: s.deviceId, issuedAt: s.issuedAt! }));
  }

  return {
    async beginRenewal(input: BeginRenewal): Promise<BeginRenewalResult> {
      const predecessor = tables.certificates.get(input.predecessorSerial);
      if (!predecessor) return { outcome: 'not-found' };
      input.authorize(asRenewalCertificate(predecessor, tables));
      if (predecessor.revokedAt) return { outcome: 'revoked', reasonCode: predecessor.revocationReason ?? 0, revokedAt: predecessor.revokedAt };
      const successor = successorOf(predecessor.serial);
      if (successor) return answerForSuccessor(successor, input);
      const reused = rows().find((c) => c.publicKeySha256.equals(input.publicKeySha256));
      if (reused) return { outcome: 'key-reused', serial: reused.serial };
      const intent = await input.buildIntent(asRenewalCertificate(predecessor, tables));
      const raced = successorOf(predecessor.serial);
      if (raced) return answerForSuccessor(raced, input);
      recordIntent(tables, intent, { tokenId: null, predecessorSerial: predecessor.serial });
      return { outcome: 'begun', intent: { ...intent, predecessorSerial: predecessor.serial } };
    },

    async complete(serial: string, der: Buffer): Promise<IssuedCertificate> {
      return completeCertificate(tables, serial, der);
    },

    async pendingSupersessions(limit) {
      return pending(tables.clock.now()).slice(0, limit);
    },

    async dueSupersessions(graceSeconds, limit) {
      const now = tables.clock.now();
      const dueBy = now.getTime() - graceSeconds * 1000;
      return pending(now)
        .filter((p) => p.issuedAt.getTime() <= dueBy)
        .slice(0, limit);
    },

    async descendants(serial) {
      const lineage: string[] = [];
      for (let next = successorOf(serial); next; next = successorOf(next.serial)) lineage.push(next.serial);
      return lineage;
    },

    async renewalCandidates(defaultWindowFraction, limit): Promise<RenewalCandidate[]> {
      const now = tables.clock.now();
      // The window of the profile version written into the certificate, as the Postgres store joins it.
      const windowOf = (c: CertificateRow) => tables.profileVersions.get(profileVersionKey(c.profile, c.profileVersion))?.renewalWindowFraction ?? defaultWindowFraction;
      return rows()
        .filter((c) => isLive(c, now) && !tables.rotationHints.has(c.serial))
        .filter((c) => now.getTime() >= c.notAfter.getTime() - (c.notAfter.getTime() - c.notBefore.getTime()) * windowOf(c))
        .sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime())
        .slice(0, limit)
        .map((c) => ({ serial: c.serial, deviceId: c.deviceId, notBefore: c.notBefore, notAfter: c.notAfter }));
    },

    async claimHint(serial): Promise<RotationHint | undefined> {
      const cert = tables.certificates.get(serial);
      if (!cert || !isLive(cert, tables.clock.now()) || tables.rotationHints.has(serial)) return undefined;
      tables.rotationHints.add(serial);
      return { serial: cert.serial, deviceId: cert.deviceId, notAfter: cert.notAfter };
    },
  };
}
