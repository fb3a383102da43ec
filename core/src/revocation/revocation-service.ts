// The revoke use case (docs/architecture.md §7): store (one statement or transaction: rows, audit, seq, NOTIFY on
// commit) → tell in-process brokers at once → ask for a CRL rebuild, coalesced (crl-publisher.ts), so a burst of
// revocations costs one CRL per CRL_MIN_INTERVAL, not one each. Brokers in other processes learn the revocation from
// the NOTIFY and the seq resync, and the CRL from its own NOTIFY.
import { DEFAULT_ENVIRONMENT, REVOCATION_REASONS, isRevocationReason, isValidDeviceId, type RevocationReason } from '@enrolld/protocol';
import type { Clock } from '../clock.js';
import { EnrollError } from '../errors.js';
import { createCrlRebuildScheduler, systemTimers, type CrlRebuildScheduler, type Timers } from './crl-publisher.js';
import type { CrlRebuildOutcome, CrlSigner, RevocationPublisher, RevocationScope, RevocationStore, RevokedCertificate, StoredCrl } from './ports.js';
import { isSerialHex } from './serial.js';

export interface RevocationServiceDeps {
  store: RevocationStore;
  /** Signs each environment's CRL with that environment's issuing CA (RFC 5280 §5: a CRL per issuer). */
  signer: CrlSigner;
  clock: Clock;
  /** Timers for the coalesced CRL rebuilds; the system's unless a test drives them. */
  timers?: Timers | undefined;
  publisher?: RevocationPublisher | undefined;
  /** nextUpdate − thisUpdate of every CRL (RFC 5280 §5.1.2.5). A broker rejects every handshake once it passes. */
  crlValidityMs: number;
  /** CRL rebuilds start at least this far apart (CRL_MIN_INTERVAL); revocations in between share the next one. */
  crlMinIntervalMs: number;
  /** The revocation is committed even when the CRL rebuild fails; this hears about each failed rebuild once (to log it). */
  onCrlError?: ((error: unknown) => void) | undefined;
  /** Each CRL stored (a metric counts them). */
  onCrlRebuilt?: ((crl: StoredCrl) => void) | undefined;
}

export interface RevokeInput {
  reason: string;
  actor: string;
  requestId?: string | undefined;
  comment?: string | undefined;
  /** `fleet` unless the admin use cases revoke an admin's certificates. */
  identities?: RevocationScope | undefined;
}

/**
 * No CRL number: the CRL that lists the revocation is built after the answer (at most CRL_MIN_INTERVAL later), and
 * GET /v1/crl serves nothing older than a revocation committed before the fetch.
 */
export interface RevokeResult {
  outcome: 'revoked' | 'already-revoked';
  deviceId: string;
  reason: RevocationReason;
  /** Serials revoked by this call (empty when it was a no-op). */
  serials: string[];
  revoked: RevokedCertificate[];
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

  /** The store decides whether it is due, under its lock and on its clock, so replicas over one database share the schedule. */
  async function regenerateCrl(environment: string): Promise<CrlRebuildOutcome> {
    const thisUpdate = new Date(Math.floor(clock.now().getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + deps.crlValidityMs);
    return store.rebuildCrlWhenDue(
      ({ entries, crlNumber }) => signer.signCrl({ entries, crlNumber, thisUpdate, nextUpdate }, environment),
      { thisUpdate, nextUpdate },
      environment,
      { minIntervalMs: deps.crlMinIntervalMs, currentForMs: deps.crlValidityMs / 2 },
    );
  }

  /** One coalescing scheduler per environment: each issuing CA's CRL is rebuilt when its own revocations move. */
  const schedulers = new Map<string, CrlRebuildScheduler>();
  function rebuildsOf(environment: string): CrlRebuildScheduler {
    let rebuilds = schedulers.get(environment);
    if (!rebuilds) {
      rebuilds = createCrlRebuildScheduler({
        rebuild: () => regenerateCrl(environment),
        timers: deps.timers ?? systemTimers,
        minIntervalMs: deps.crlMinIntervalMs,
        onRebuilt(crl) {
          deps.onCrlRebuilt?.(crl);
          deps.publisher?.revoked([], crl);
        },
        // The rows are committed and NOTIFY is out: brokers refuse the serial at CONNECT and cut it live. Only the CRL
        // lags until a later rebuild succeeds.
        onError: (error) => deps.onCrlError?.(error),
      });
      schedulers.set(environment, rebuilds);
    }
    return rebuilds;
  }

  /** Published before any CRL work: the live cut must not wait for a signature. */
  function afterCommit(revoked: RevokedCertificate[]): void {
    deps.publisher?.revoked(revoked, undefined);
    for (const environment of new Set(revoked.map((r) => r.environment))) rebuildsOf(environment).schedule();
  }

  function finish(reason: RevocationReason, result: Awaited<ReturnType<RevocationStore['revokeDevice']>>, notFound: string): RevokeResult {
    if (result.outcome === 'not-found') throw new EnrollError('not-found', notFound);
    if (result.outcome === 'already-revoked') return { outcome: 'already-revoked', deviceId: result.deviceId, reason, serials: [], revoked: [] };
    afterCommit(result.revoked);
    return { outcome: 'revoked', deviceId: result.deviceId, reason, serials: result.revoked.map((r) => r.serial), revoked: result.revoked };
  }

  function checkSerial(serial: string): void {
    if (!isSerialHex(serial)) throw new EnrollError('bad-request', 'serial must be hexadecimal, at most 20 octets (RFC 5280 §4.1.2.2)');
  }

  /**
   * The environment's stored CRL when it covers every revocation committed in it and has used up less than half its
   * validity; otherwise the next coalesced rebuild, which covers everything committed before this call.
   */
  async function ensureCrlCurrent(environment: string = DEFAULT_ENVIRONMENT): Promise<StoredCrl> {
    const [latest, lastSeq] = await Promise.all([store.latestCrl(environment), store.lastSeq(environment)]);
    const now = clock.now().getTime();
    if (latest && latest.coversSeq >= lastSeq && now < latest.thisUpdate.getTime() + deps.crlValidityMs / 2 && now < latest.nextUpdate.getTime()) {
      return latest;
    }
    return rebuildsOf(environment).request();
  }

  return {
    async revokeDevice(deviceId: string, input: RevokeInput): Promise<RevokeResult> {
      if (!isValidDeviceId(deviceId)) throw new EnrollError('bad-request', 'device id must match ^[a-z0-9][a-z0-9._-]{0,62}$');
      const code = reasonCode(input.reason);
      const result = await store.revokeDevice(deviceId, { reasonCode: code, actor: input.actor, requestId: input.requestId, comment: input.comment, identities: input.identities });
      return finish(input.reason as RevocationReason, result, `no device ${deviceId}`);
    },

    async revokeCertificate(serial: string, input: RevokeInput): Promise<RevokeResult> {
      checkSerial(serial);
      const code = reasonCode(input.reason);
      const result = await store.revokeCertificate(serial, { reasonCode: code, actor: input.actor, requestId: input.requestId, comment: input.comment, identities: input.identities });
      return finish(input.reason as RevocationReason, result, `no certificate with serial ${serial}`);
    },

    /**
     * Revokes many certificates by canonical serial in one short statement (supersedes batched by the rotation).
     * Unknown and already revoked serials are skipped: `revoked` holds only those this call revoked.
     */
    async revokeCertificates(serials: string[], input: { reason: string; actor: string; requestId?: string }): Promise<{ revoked: RevokedCertificate[] }> {
      serials.forEach(checkSerial);
      const code = reasonCode(input.reason);
      if (serials.length === 0) return { revoked: [] };
      const revoked = await store.revokeCertificates(serials, { reasonCode: code, actor: input.actor, requestId: input.requestId });
      if (revoked.length > 0) afterCommit(revoked);
      return { revoked };
    },

    ensureCrlCurrent,

    /** The environment's CRL to serve at GET /v1/crl: the stored one, or the next rebuild when it is stale or missing. */
    async currentCrl(environment: string = DEFAULT_ENVIRONMENT): Promise<StoredCrl> {
      return ensureCrlCurrent(environment);
    },
  };
}

export type RevocationService = ReturnType<typeof createRevocationService>;
