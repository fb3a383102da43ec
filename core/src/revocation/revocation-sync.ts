// Keeps one broker's RevocationState (and, on a broker, its admission registry) in step with the store
// (docs/architecture.md §7, revocation fan-out):
//  - a full snapshot before anyone is admitted (until then the state is unknown and CONNECTs are refused);
//  - feed events for speed (the in-process push at once, NOTIFY milliseconds after commit); the same event may
//    arrive from both, and only the first is fresh (RevocationState.apply; the registry ignores a repeat);
//  - a resync by revocation seq and by issue seq on an interval and after every reconnect of the feed, because a
//    notification sent while the LISTEN connection was down is gone for good (Postgres NOTIFY, like Redis pub/sub,
//    is at-most-once);
//  - the newest CRL, for a consumer that wants it.
import type { RegistryFeed, RegistryStore } from '../admission/ports.js';
import type { AdmissionRegistry } from '../admission/registry.js';
import type { Clock } from '../clock.js';
import type { RevocationSnapshot, RevocationStore, StoredCrl } from './ports.js';
import type { RevocationState } from './revocation-state.js';

export interface RevokedNotice {
  /** Canonical serial (protocol/src/serial.ts). */
  serial: string;
  deviceId: string;
  reasonCode: number;
  /** Commit time (ms since epoch) as best known: the NOTIFY stamp, or revoked_at from a resync. */
  atMs: number;
}

export interface SyncLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** The admission registry a broker keeps next to the revocation state, and where it loads from. */
export interface RegistryFollower {
  registry: AdmissionRegistry;
  store: Pick<RegistryStore, 'registrySnapshot' | 'issuedSince'>;
}

export interface RevocationSyncDeps {
  store: Pick<RevocationStore, 'snapshot' | 'revokedSince'> & Partial<Pick<RevocationStore, 'latestCrl'>>;
  /** A revocation feed, or a registry feed when `registry` is given (it also carries issuance). */
  feed: RegistryFeed;
  registry?: RegistryFollower | undefined;
  state: RevocationState;
  clock: Clock;
  logger: SyncLogger;
  resyncIntervalMs: number;
  /** Serials that became revoked for this process: cut their sessions. */
  onRevoked(notices: RevokedNotice[]): void;
  /** A newer CRL than the one in use; without it no CRL is read. */
  onCrl?: ((crl: StoredCrl) => void) | undefined;
  /** How often a fresh snapshot replaces what expired certificates left in the state (default an hour). */
  compactIntervalMs?: number | undefined;
}

/** Resync page size, for revocations and issuance alike. */
const PAGE = 5000;
/** How often expired devices are dropped from the registry. */
const PRUNE_INTERVAL_MS = 60_000;
/** How often the revocation state is compacted against a snapshot: one bulk read of the unexpired revocations. */
const COMPACT_INTERVAL_MS = 3600_000;

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function createRevocationSync(deps: RevocationSyncDeps) {
  const { store, feed, state, logger } = deps;
  const follower = deps.registry;
  let prunedAt = deps.clock.now().getTime();
  let compactedAt = prunedAt;
  const compactIntervalMs = deps.compactIntervalMs ?? COMPACT_INTERVAL_MS;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let syncing: Promise<void> | undefined;
  let again = false;
  let crlNumber: bigint | undefined;
  let loaded = false;

  async function refreshCrl(): Promise<void> {
    if (!deps.onCrl || !store.latestCrl) return;
    const crl = await store.latestCrl();
    if (crl && (crlNumber === undefined || crl.crlNumber > crlNumber)) {
      crlNumber = crl.crlNumber;
      deps.onCrl(crl);
    }
  }

  /** Issuance the feed has not delivered, by issue seq (contiguous pages, so the seq may advance). */
  async function catchUpIssued(registry: RegistryFollower): Promise<void> {
    for (;;) {
      const page = await registry.store.issuedSince(registry.registry.lastSeq(), PAGE);
      for (const row of page) registry.registry.issued(row, { advanceSeq: true });
      if (page.length < PAGE) break;
    }
    const now = deps.clock.now().getTime();
    if (now - prunedAt >= PRUNE_INTERVAL_MS) {
      prunedAt = now;
      registry.registry.prune(now);
    }
  }

  /** Cuts the sessions of serials first learned from a snapshot (they may belong to sessions admitted before). */
  function cutFresh(snapshot: RevocationSnapshot, fresh: Set<string>): void {
    const notices = snapshot.revoked
      .filter((r) => fresh.has(r.serial))
      .map((r) => ({ serial: r.serial, deviceId: r.deviceId, reasonCode: r.reasonCode, atMs: r.revokedAt.getTime() }));
    if (notices.length > 0) deps.onRevoked(notices);
  }

  async function syncOnce(): Promise<void> {
    try {
      if (!loaded) {
        // The registry first: a certificate revoked between the two reads is then refused as revoked.
        if (follower) follower.registry.load(await follower.store.registrySnapshot());
        const snapshot = await store.snapshot();
        const fresh = new Set(state.load(snapshot));
        loaded = true;
        logger.info({ revoked: state.size(), lastSeq: state.lastSeq(), devices: follower?.registry.size() }, 'revocation state loaded');
        // Serials we first learn from a snapshot may belong to sessions admitted before (a reload after an outage).
        cutFresh(snapshot, fresh);
      } else {
        // Pages until caught up; seqs are handed out in commit order, so "> lastSeq" cannot skip a late commit.
        if (follower) await catchUpIssued(follower);
        for (;;) {
          const page = await store.revokedSince(state.lastSeq(), PAGE);
          if (page.length === 0) break;
          const fresh = new Set(state.apply(page, { advanceSeq: true }));
          const notices = page
            .map((r) => ({ serial: r.serial, deviceId: r.deviceId, reasonCode: r.reasonCode, atMs: r.revokedAt.getTime() }))
            .filter((n) => fresh.has(n.serial));
          if (notices.length > 0) {
            logger.warn({ count: notices.length, lastSeq: state.lastSeq() }, 'resync found revocations the feed had not delivered');
            deps.onRevoked(notices);
          }
          if (page.length < PAGE) break;
        }
        const now = deps.clock.now().getTime();
        if (now - compactedAt >= compactIntervalMs) {
          compactedAt = now;
          const snapshot = await store.snapshot();
          const { fresh, dropped } = state.compact(snapshot);
          if (dropped > 0) logger.info({ dropped, revoked: state.size() }, 'revocation state compacted: serials of certificates expired for more than a day forgotten');
          cutFresh(snapshot, new Set(fresh));
        }
        state.markSynced();
      }
      await refreshCrl();
    } catch (error) {
      const reason = `revocation store unreachable: ${errorText(error)}`;
      state.markUnknown(reason);
      const status = state.status();
      logger.error({ err: errorText(error), known: status.known }, status.known ? 'revocation resync failed' : 'revocation state unknown: refusing device CONNECTs');
    }
  }

  /** Runs a sync now, or right after the one in progress (never two at once). */
  function syncSoon(): Promise<void> {
    if (syncing) {
      again = true;
      return syncing;
    }
    syncing = (async () => {
      do {
        again = false;
        await syncOnce();
      } while (again && running);
    })().finally(() => {
      syncing = undefined;
    });
    return syncing;
  }

  return {
    async start(): Promise<void> {
      running = true;
      await feed.start({
        onRevocation(event) {
          const seqBefore = state.lastSeq();
          // Contiguous events may advance the seq; a gap is left for the resync to fill.
          const fresh = state.apply([event], { advanceSeq: loaded && event.seq === seqBefore + 1 });
          if (fresh.length > 0) {
            deps.onRevoked(fresh.map((serial) => ({ serial, deviceId: event.deviceId, reasonCode: event.reasonCode, atMs: event.atMs })));
          }
        },
        onIssued(event) {
          if (!follower) return;
          const registry = follower.registry;
          registry.issued(event, { advanceSeq: loaded && event.seq === registry.lastSeq() + 1 });
        },
        onCrl(number, crl) {
          if (!deps.onCrl) return;
          if (crlNumber !== undefined && number <= crlNumber) return;
          if (!crl) return void syncSoon();
          crlNumber = crl.crlNumber;
          deps.onCrl(crl);
        },
        onConnection(connected, error) {
          if (connected) {
            logger.info({}, 'revocation feed connected');
            void syncSoon();
          } else {
            logger.warn({ err: errorText(error) }, 'revocation feed lost; resyncing by seq until it is back');
          }
        },
      });
      await syncSoon();
      timer = setInterval(() => void syncSoon(), deps.resyncIntervalMs);
      timer.unref();
    },
    async stop(): Promise<void> {
      running = false;
      if (timer) clearInterval(timer);
      timer = undefined;
      await feed.stop();
      await syncing;
    },
    /** Forces a resync now (tests; the interval and the feed do it otherwise). */
    syncNow: syncSoon,
  };
}

export type RevocationSync = ReturnType<typeof createRevocationSync>;
