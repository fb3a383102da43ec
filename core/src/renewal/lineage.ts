// Lineage (docs/architecture.md §8): every certificate records its predecessor. A predecessor is retired with reason
// `superseded` (RFC 5280 §5.3.1) through the revocation use case, so its live sessions are cut like any revocation:
//  - when its successor first connects to the broker (the device has shown it holds the new key), or
//  - after a grace period (a job), so a successor that is never used does not leave the old certificate alive
//    (the cloned-device risk: two holders of one identity).
// The broker asks `successorConnected(serial)` on every CONNECT, so that answer is a Map lookup: the pending
// successors are loaded from the store at start and learned as they are issued (in-process, or from the feed).
import type { Clock } from '../clock.js';
import type { RevokeResult } from '../revocation/revocation-service.js';
import type { PendingSupersession, RenewalStore } from './ports.js';

export type SupersedeTrigger = 'first-connect' | 'grace';

export interface LineageRevoker {
  revokeCertificate(serial: string, input: { reason: string; actor: string; requestId?: string | undefined }): Promise<RevokeResult>;
}

export interface LineageLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LineageDeps {
  store: Pick<RenewalStore, 'pendingSupersessions' | 'dueSupersessions' | 'descendants'>;
  revoker: LineageRevoker;
  clock: Clock;
  logger: LineageLogger;
  /** Seconds after the successor's issuance when the predecessor is superseded even if the successor was never used. */
  graceSeconds: number;
  /** Upper bound on pending successors kept in memory; beyond it, the grace job still retires them. */
  maxPending?: number;
  onSuperseded?: (trigger: SupersedeTrigger, predecessorSerial: string) => void;
}

export function createLineage(deps: LineageDeps) {
  const { store, revoker, logger } = deps;
  const maxPending = deps.maxPending ?? 200_000;
  /** successor serial → pending supersession */
  const pending = new Map<string, PendingSupersession>();
  /** predecessors being revoked right now, so a burst of CONNECTs revokes once */
  const inFlight = new Map<string, Promise<boolean>>();

  function remember(entry: PendingSupersession): void {
    if (pending.size >= maxPending) return;
    pending.set(entry.successorSerial, entry);
  }

  async function supersede(entry: PendingSupersession, trigger: SupersedeTrigger): Promise<boolean> {
    const key = entry.predecessorSerial;
    const running = inFlight.get(key);
    if (running) return running;
    const work = (async () => {
      const result = await revoker.revokeCertificate(entry.predecessorSerial, { reason: 'superseded', actor: `rotation:${trigger}` });
      pending.delete(entry.successorSerial);
      if (result.outcome === 'revoked') {
        deps.onSuperseded?.(trigger, entry.predecessorSerial);
        logger.info(
          { deviceId: entry.deviceId, serial: entry.predecessorSerial, successorSerial: entry.successorSerial, trigger },
          'predecessor superseded',
        );
        return true;
      }
      return false;
    })().finally(() => inFlight.delete(key));
    inFlight.set(key, work);
    return work;
  }

  return {
    /** Loads the successors still waiting to retire their predecessor. */
    async load(): Promise<number> {
      const rows = await store.pendingSupersessions(maxPending);
      for (const row of rows) remember(row);
      return rows.length;
    },

    /** A successor was issued (in this process, or announced by another one). */
    noteRenewal(entry: PendingSupersession): void {
      remember(entry);
    },

    /**
     * A device connected with `serial`. When it is a successor whose predecessor is still live, the predecessor is
     * superseded now (its live sessions are cut by the revocation fan-out). Resolves true when the predecessor was
     * superseded, by this call or by one already running for the same successor.
     */
    successorConnected(serial: string): Promise<boolean> {
      const entry = pending.get(serial);
      if (!entry) return Promise.resolve(false);
      return supersede(entry, 'first-connect').catch((error: unknown) => {
        // Left pending: the next CONNECT or the grace job tries again.
        logger.error({ err: error, serial: entry.predecessorSerial, deviceId: entry.deviceId }, 'superseding the predecessor failed');
        return false;
      });
    },

    /** The grace job: supersedes every predecessor whose successor is older than the grace period. */
    async supersedeDue(limit = 1000): Promise<number> {
      const due = await store.dueSupersessions(deps.graceSeconds, limit);
      let revoked = 0;
      for (const entry of due) if (await supersede(entry, 'grace')) revoked++;
      return revoked;
    },

    /**
     * Revokes a certificate and every certificate renewed from it, oldest first: a compromised key could have
     * authenticated the renewals that followed it (docs/architecture.md §8).
     */
    async revokeLineage(serial: string, input: { reason: string; actor: string; requestId?: string | undefined }): Promise<string[]> {
      const serials = [serial, ...(await store.descendants(serial))];
      const revoked: string[] = [];
      for (const s of serials) {
        const result = await revoker.revokeCertificate(s, input);
        revoked.push(...result.serials);
      }
      return revoked;
    },

    pendingCount: () => pending.size,
  };
}

export type Lineage = ReturnType<typeof createLineage>;
