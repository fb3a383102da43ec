// The revoke use case (docs/architecture.md §7): store (one transaction: rows, audit, seq, NOTIFY on commit) → rebuild the CRL
// with the issuing CA → tell in-process brokers. Brokers in other processes learn it from the NOTIFY and the seq resync.
import { REVOCATION_REASONS, isRevocationReason, isValidDeviceId, type RevocationReason } from '@enrolld/protocol';
import type { Clock } from '../clock.js';
import { EnrollError } from '../errors.js';
import type { CrlSigner, RevocationPublisher, RevocationStore, RevokedCertificate, StoredCrl } from './ports.js';
import { isSerialHex } from './serial.js';

export interface RevocationServiceDeps {
  store: RevocationStore;
  signer: CrlSigner;
  clock: Clock;
  publisher?: RevocationPublisher | undefined;
  /** nextUpdate − thisUpdate of every CRL (RFC 5280 §5.1.2.5). A broker rejects every handshake once it passes. */
  crlValidityMs: number;
  /** The revocation is committed even when the CRL rebuild fails; this hears about the failure (to log it once). */
  onCrlError?: ((error: unknown) => void) | undefined;
}

export interface RevokeInput {
  reason: string;
  actor: string;
  requestId?: string | undefined;
}

export interface RevokeResult {
  outcome: 'revoked' | 'already-revoked';
  deviceId: string;
  reason: RevocationReason;
  /** Serials revoked by this call (empty when it was a no-op). */
  serials: string[];
  revoked: RevokedCertificate[];
  /** The CRL that includes them, when it could be rebuilt. */
  crlNumber: bigint | undefined;
}

// RFC 5280 §5.3.1: removeFromCRL appears only in delta CRLs, and certificateHold is a reversible state this
// server does not offer (revocation is permanent, so a broker never has to re-admit a serial).
const NOT_FOR_REVOKE: ReadonlySet<RevocationReason> = new Set<RevocationReason>(['removeFromCRL', 'certificateHold']);

export function reasonCode(reason: string): number {
  if (!isRevocationReason(reason) || NOT_FOR_REVOKE.has(reason)) {
    throw new EnrollError('bad-request', `reason must be one of ${Object.keys(REVOCATION_REASONS).filter((r) => !NOT_FOR_REVOKE.has(r as RevocationReason)).join(', ')}`);
  }
  return REVOCATION_REASONS[reason];
}

export function createRevocationService(deps: RevocationServiceDeps) {
  const { store, signer, clock } = deps;

  async function regenerateCrl(): Promise<StoredCrl> {
    const thisUpdate = new Date(Math.floor(clock.now().getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + deps.crlValidityMs);
    return store.regenerateCrl(
      ({ entries, crlNumber }) => signer.signCrl({ entries, crlNumber, thisUpdate, nextUpdate }),
      { thisUpdate, nextUpdate },
    );
  }

  async function afterCommit(revoked: RevokedCertificate[]): Promise<StoredCrl | undefined> {
    let crl: StoredCrl | undefined;
    try {
      crl = await regenerateCrl();
    } catch (error) {
      // The rows are committed and NOTIFY is out: brokers refuse the serial at CONNECT and cut it live. Only the
      // TLS-level CRL lags until ensureCrlCurrent() succeeds.
      deps.onCrlError?.(error);
    }
    deps.publisher?.revoked(revoked, crl);
    return crl;
  }

  async function finish(reason: RevocationReason, result: Awaited<ReturnType<RevocationStore['revokeDevice']>>, notFound: string): Promise<RevokeResult> {
    if (result.outcome === 'not-found') throw new EnrollError('not-found', notFound);
    if (result.outcome === 'already-revoked') {
      // A no-op for the caller, but it repairs a CRL that a failed rebuild left behind.
      const crl = await ensureCrlCurrent().catch((error: unknown) => {
        deps.onCrlError?.(error);
        return undefined;
      });
      return { outcome: 'already-revoked', deviceId: result.deviceId, reason, serials: [], revoked: [], crlNumber: crl?.crlNumber };
    }
    const crl = await afterCommit(result.revoked);
    return {
      outcome: 'revoked',
      deviceId: result.deviceId,
      reason,
      serials: result.revoked.map((r) => r.serial),
      revoked: result.revoked,
      crlNumber: crl?.crlNumber,
    };
  }

  /** Rebuilds the CRL when it is missing, misses a committed revocation, or has used up half its validity. */
  async function ensureCrlCurrent(): Promise<StoredCrl> {
    const [latest, lastSeq] = await Promise.all([store.latestCrl(), store.lastSeq()]);
    const now = clock.now().getTime();
    if (latest && latest.coversSeq >= lastSeq && now < latest.thisUpdate.getTime() + deps.crlValidityMs / 2 && now < latest.nextUpdate.getTime()) {
      return latest;
    }
    return regenerateCrl();
  }

  return {
    async revokeDevice(deviceId: string, input: RevokeInput): Promise<RevokeResult> {
      if (!isValidDeviceId(deviceId)) throw new EnrollError('bad-request', 'device id must match ^[a-z0-9][a-z0-9._-]{0,62}$');
      const code = reasonCode(input.reason);
      const result = await store.revokeDevice(deviceId, { reasonCode: code, actor: input.actor, requestId: input.requestId });
      return finish(input.reason as RevocationReason, result, `no device ${deviceId}`);
    },

    async revokeCertificate(serial: string, input: RevokeInput): Promise<RevokeResult> {
      if (!isSerialHex(serial)) throw new EnrollError('bad-request', 'serial must be hexadecimal, at most 20 octets (RFC 5280 §4.1.2.2)');
      const code = reasonCode(input.reason);
      const result = await store.revokeCertificate(serial, { reasonCode: code, actor: input.actor, requestId: input.requestId });
      return finish(input.reason as RevocationReason, result, `no certificate with serial ${serial}`);
    },

    ensureCrlCurrent,

    /** The CRL to serve at GET /v1/crl: the stored one, rebuilt first if it is stale or missing. */
    async currentCrl(): Promise<StoredCrl> {
      return ensureCrlCurrent();
    },
  };
}

export type RevocationService = ReturnType<typeof createRevocationService>;
