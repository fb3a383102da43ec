// Keeps one broker's RevocationState in step with the store (docs/architecture.md, revocation fan-out):
//  - a full snapshot before anyone is admitted (until then the state is unknown and CONNECTs are refused);
//  - feed events for speed (the in-process push at once, NOTIFY milliseconds after commit); the same revocation
//    may arrive from both, and only the first is fresh (RevocationState.apply);
//  - a resync by revocation seq on an interval and after every reconnect of the feed, because a notification sent
//    while the LISTEN connection was down is gone for good (Postgres NOTIFY, like Redis pub/sub, is at-most-once);
//  - the newest CRL, for the TLS layer.
import type { Clock } from '../clock.js';
import type { RevocationFeed, RevocationStore, StoredCrl } from './ports.js';
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

export interface RevocationSyncDeps {
  store: Pick<RevocationStore, 'snapshot' | 'revokedSince' | 'latestCrl'>;
  feed: RevocationFeed;
  state: RevocationState;
  clock: Clock;
  logger: SyncLogger;
  resyncIntervalMs: number;
  /** Serials that became revoked for this process: cut their sessions. */
  onRevoked(notices: RevokedNotice[]): void;
  /** A newer CRL than the one in use. */
  onCrl(crl: StoredCrl): void;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function createRevocationSync(deps: RevocationSyncDeps) {
  const { store, feed, state, logger } = deps;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let syncing: Promise<void> | undefined;
  let again = false;
  let crlNumber: bigint | undefined;
  let loaded = false;

  async function refreshCrl(): Promise<void> {
    const crl = await store.latestCrl();
    if (crl && (crlNumber === undefined || crl.crlNumber > crlNumber)) {
      crlNumber = crl.crlNumber;
      deps.onCrl(crl);
    }
  }

  async function syncOnce(): Promise<void> {
    try {
      if (!loaded) {
        const snapshot = await store.snapshot();
        const fresh = new Set(state.load(snapshot));
        loaded = true;
        logger.info({ revoked: state.size(), lastSeq: state.lastSeq() }, 'revocation state loaded');
        // Serials we first learn from a snapshot may belong to sessions admitted before (a reload after an outage).
        const notices = snapshot.revoked
          .filter((r) => fresh.has(r.serial))
          .map((r) => ({ serial: r.serial, deviceId: r.deviceId, reasonCode: r.reasonCode, atMs: r.revokedAt.getTime() }));
        if (notices.length > 0) deps.onRevoked(notices);
      } else {
        // Pages until caught up; seqs are handed out in commit order, so "> lastSeq" cannot skip a late commit.
        for (;;) {
          const page = await store.revokedSince(state.lastSeq(), 5000);
          if (page.length === 0) break;
          const fresh = new Set(state.apply(page, { advanceSeq: true }));
          const notices = page
            .map((r) => ({ serial: r.serial, deviceId: r.deviceId, reasonCode: r.reasonCode, atMs: r.revokedAt.getTime() }))
            .filter((n) => fresh.has(n.serial));
          if (notices.length > 0) {
            logger.warn({ count: notices.length, lastSeq: state.lastSeq() }, 'resync found revocations the feed had not delivered');
            deps.onRevoked(notices);
          }
          if (page.length < 5000) break;
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
        onCrl(number, crl) {
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
