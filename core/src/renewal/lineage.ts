// Lineage (docs/architecture.md §8): every certificate records its predecessor. A predecessor is retired with reason
// `superseded` (RFC 5280 §5.3.1) through the revocation use case, so its live sessions are cut like any revocation:
//  - when its successor first connects to the broker (the device has shown it holds the new key), or
//  - after a grace period (a job), so a successor that is never used does not leave the old certificate alive
//    (the cloned-device risk: two holders of one identity).
// The broker asks `successorConnected(serial)` on every CONNECT, so that answer is a Map lookup: the pending
// successors are loaded from the store at start and learned as they are issued (in-process, or from the feed).
// Supersessions are batched: successors that first connect within `batchWindowMs` retire their predecessors in one
// revocation statement, and one batch runs at a time, so rotation holds at most one pool connection for one short
// statement however many devices rotate at once (docs/architecture.md §7).
import type { Clock } from '../clock.js';
import type { RevokeInput, RevokeResult } from '../revocation/revocation-service.js';
import type { RevokedCertificate } from '../revocation/ports.js';
import type { PendingSupersession, RenewalStore } from './ports.js';

export type SupersedeTrigger = 'first-connect' | 'grace';

export interface LineageRevoker {
  /** One statement for the whole batch; answers the certificates this call revoked (already revoked ones are left out). */
  revokeCertificates(serials: string[], input: RevokeInput): Promise<{ revoked: RevokedCertificate[] }>;
  revokeCertificate(serial: string, input: RevokeInput): Promise<RevokeResult>;
}

export interface LineageLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Runs `fn` once after `ms` (setTimeout in production; tests fire it by hand). */
export type LineageScheduler = (fn: () => void, ms: number) => void;

export interface LineageDeps {
  store: Pick<RenewalStore, 'pendingSupersessions' | 'dueSupersessions' | 'descendants'>;
  revoker: LineageRevoker;
  clock: Clock;
  logger: LineageLogger;
  /** Seconds after the successor's issuance when the predecessor is superseded even if the successor was never used. */
  graceSeconds: number;
  /** Successors that first connect within this window share one revocation statement. */
  batchWindowMs?: number;
  schedule?: LineageScheduler;
  /** Upper bound on pending successors kept in memory; beyond it, the grace job still retires them. */
  maxPending?: number;
  /**
   * A predecessor was superseded. For the first-connect trigger, `sinceFirstConnectMs` is the time from the successor's
   * first CONNECT to the committed revocation: the server's share of "old certificate still accepted".
   */
  onSuperseded?: (trigger: SupersedeTrigger, predecessorSerial: string, sinceFirstConnectMs?: number) => void;
}

export const DEFAULT_SUPERSEDE_BATCH_WINDOW_MS = 25;
/** A batch that fills up is sent before its window ends, so one statement stays short. */
export const MAX_SUPERSEDE_BATCH = 500;

interface FirstConnectBatch {
  entries: PendingSupersession[];
  /** The predecessors this batch revoked; rejects when the statement failed. */
  result: Promise<ReadonlySet<string>>;
  send(): void;
}

export function createLineage(deps: LineageDeps) {
  const { store, revoker, logger } = deps;
  const maxPending = deps.maxPending ?? 200_000;
  const batchWindowMs = deps.batchWindowMs ?? DEFAULT_SUPERSEDE_BATCH_WINDOW_MS;
  const schedule: LineageScheduler = deps.schedule ?? ((fn, ms) => void setTimeout(fn, ms));
  /** successor serial → pending supersession */
  const pending = new Map<string, PendingSupersession>();
  /** successor serial → when it first connected, for the entries waiting in a first-connect batch */
  const firstConnectAt = new Map<string, number>();
  /** predecessors being revoked right now (or waiting in a batch), so a burst of CONNECTs revokes once */
  const inFlight = new Map<string, Promise<boolean>>();
  /** the first-connect batch still taking entries: it closes when its statement starts */
  let collecting: FirstConnectBatch | undefined;
  /** the last batch sent; the next one starts after it settles */
  let tail: Promise<unknown> = Promise.resolve();

  function remember(entry: PendingSupersession): void {
    if (pending.size >= maxPending) return;
    pending.set(entry.successorSerial, entry);
  }

  function oneAtATime<T>(work: () => Promise<T>): Promise<T> {
    const run = tail.then(work, work);
    tail = run.catch(() => undefined);
    return run;
  }

  async function revokeBatch(entries: PendingSupersession[], trigger: SupersedeTrigger): Promise<ReadonlySet<string>> {
    let revoked: RevokedCertificate[];
    try {
      ({ revoked } = await revoker.revokeCertificates(
        entries.map((e) => e.predecessorSerial),
        { reason: 'superseded', actor: `rotation:${trigger}` },
      ));
    } catch (error) {
      // Left pending: the next CONNECT or the grace job tries again.
      logger.error({ err: error, predecessors: entries.length, trigger }, 'superseding predecessors failed');
      throw error;
    }
    const serials = new Set(revoked.map((r) => r.serial));
    const committedAt = deps.clock.now().getTime();
    for (const entry of entries) {
      pending.delete(entry.successorSerial);
      const connectedAt = firstConnectAt.get(entry.successorSerial);
      firstConnectAt.delete(entry.successorSerial);
      if (!serials.has(entry.predecessorSerial)) continue;
      deps.onSuperseded?.(trigger, entry.predecessorSerial, connectedAt === undefined ? undefined : committedAt - connectedAt);
      logger.info(
        { deviceId: entry.deviceId, serial: entry.predecessorSerial, successorSerial: entry.successorSerial, trigger },
        'predecessor superseded',
      );
    }
    return serials;
  }

  function track(entry: PendingSupersession, result: Promise<ReadonlySet<string>>): Promise<boolean> {
    const key = entry.predecessorSerial;
    const outcome = result.then((serials) => serials.has(key)).finally(() => inFlight.delete(key));
    inFlight.set(key, outcome);
    return outcome;
  }

  function openBatch(): FirstConnectBatch {
    const entries: PendingSupersession[] = [];
    let start!: () => void;
    const started = new Promise<void>((resolve) => (start = resolve));
    let sent = false;
    const batch: FirstConnectBatch = {
      entries,
      result: started.then(() =>
        oneAtATime(() => {
          if (collecting === batch) collecting = undefined;
          return revokeBatch(entries, 'first-connect');
        }),
      ),
      send() {
        if (sent) return;
        sent = true;
        start();
      },
    };
    schedule(batch.send, batchWindowMs);
    return batch;
  }

  function joinFirstConnectBatch(entry: PendingSupersession): Promise<boolean> {
    collecting ??= openBatch();
    const batch = collecting;
    batch.entries.push(entry);
    if (!firstConnectAt.has(entry.successorSerial)) firstConnectAt.set(entry.successorSerial, deps.clock.now().getTime());
    if (batch.entries.length >= MAX_SUPERSEDE_BATCH) {
      collecting = undefined;
      batch.send();
    }
    return track(entry, batch.result);
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
     * superseded within the batch window (its live sessions are cut by the revocation fan-out). Resolves true when
     * the predecessor was superseded, by this call or by one already running for the same successor; false when
     * there was nothing to supersede or the statement failed (the entry stays pending).
     */
    successorConnected(serial: string): Promise<boolean> {
      const entry = pending.get(serial);
      if (!entry) return Promise.resolve(false);
      const outcome = inFlight.get(entry.predecessorSerial) ?? joinFirstConnectBatch(entry);
      return outcome.catch(() => false);
    },

    /** The grace job: supersedes every predecessor whose successor is older than the grace period, in one statement. */
    async supersedeDue(limit = 1000): Promise<number> {
      const due = await store.dueSupersessions(deps.graceSeconds, limit);
      const joined = due.flatMap((entry) => inFlight.get(entry.predecessorSerial) ?? []);
      const fresh = due.filter((entry) => !inFlight.has(entry.predecessorSerial));
      const outcomes: Array<Promise<boolean>> = [...joined];
      for (let i = 0; i < fresh.length; i += MAX_SUPERSEDE_BATCH) {
        const chunk = fresh.slice(i, i + MAX_SUPERSEDE_BATCH);
        const result = oneAtATime(() => revokeBatch(chunk, 'grace'));
        outcomes.push(...chunk.map((entry) => track(entry, result)));
      }
      const superseded = await Promise.all(outcomes);
      return superseded.filter(Boolean).length;
    },

    /**
     * Revokes a certificate and every certificate renewed from it, oldest first: a compromised key could have
     * authenticated the renewals that followed it (docs/architecture.md §8).
     */
    async revokeLineage(serial: string, input: RevokeInput): Promise<string[]> {
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
