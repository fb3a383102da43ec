// The in-process revocation path: the revoke use case and a broker in the same process. The service hands each
// committed revocation to this feed as its publisher, and the broker's revocation sync hears it synchronously, so a
// live session is cut without waiting for the Postgres NOTIFY round trip (docs/architecture.md, revocation fan-out).
// The NOTIFY feed and the seq resync still run next to it; they deliver the same events again, which the sync
// ignores (a serial already revoked is not fresh).
import type { RevocationFeed, RevocationFeedHandlers, RevocationPublisher } from '../revocation/ports.js';

export interface LocalRevocationFeed extends RevocationFeed, RevocationPublisher {}

export function createLocalRevocationFeed(): LocalRevocationFeed {
  let handlers: RevocationFeedHandlers | undefined;
  return {
    async start(next) {
      if (handlers) throw new Error('local revocation feed already started');
      handlers = next;
    },
    async stop() {
      handlers = undefined;
    },
    revoked(revoked, crl) {
      // Nobody listening (before start, after stop): dropped. The sync's snapshot or resync reads them from the store.
      const current = handlers;
      if (!current) return;
      for (const r of revoked) {
        current.onRevocation({ serial: r.serial, deviceId: r.deviceId, seq: r.seq, reasonCode: r.reasonCode, atMs: r.revokedAt.getTime() });
      }
      // The CRL itself, after a coalesced rebuild: the broker needs no store round trip to take it.
      if (crl) current.onCrl(crl.crlNumber, crl);
    },
  };
}
